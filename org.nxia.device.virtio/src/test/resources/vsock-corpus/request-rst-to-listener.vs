# issue 12 item 7: REQUEST then RST to a port with a Java listener left the queued stream (two pipe fds) open.
packet op=1 src=5000 dst=80
expect 2
packet op=3 src=5000 dst=80
packet op=1 src=5001 dst=80
expect 2
packet op=3 src=5001 dst=80
connections 0
accepted 0   # the reset connections are no longer offered
