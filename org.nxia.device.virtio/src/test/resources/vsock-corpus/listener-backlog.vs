# A Java listener nobody accepts from queues 16 connections; the 17th is refused.
packet op=1 src=6000 dst=81
packet op=1 src=6001 dst=81
packet op=1 src=6002 dst=81
packet op=1 src=6003 dst=81
packet op=1 src=6004 dst=81
packet op=1 src=6005 dst=81
packet op=1 src=6006 dst=81
packet op=1 src=6007 dst=81
packet op=1 src=6008 dst=81
packet op=1 src=6009 dst=81
packet op=1 src=6010 dst=81
packet op=1 src=6011 dst=81
packet op=1 src=6012 dst=81
packet op=1 src=6013 dst=81
packet op=1 src=6014 dst=81
packet op=1 src=6015 dst=81
expect 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2
packet op=1 src=6016 dst=81
expect 3
connections 16
