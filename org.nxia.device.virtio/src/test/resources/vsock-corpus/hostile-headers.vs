# Bad headers: RST (or, for a spoofed source CID, nothing), and the device keeps serving.
packet op=1 src=5000 dst=80 srccid=7
silent
packet op=1 src=5001 dst=80 dstcid=3
expect 3
packet op=1 src=5002 dst=80 type=2
expect 3
packet op=99 src=5003 dst=80
expect 3
packet op=5 src=5004 dst=80 len=5000 payload=4
expect 3
packet op=1 src=5005 dst=80 payload=4
expect 3
packet op=5 src=5006 dst=80 payload=8
expect 3
packet op=3 src=5008 dst=80
silent
packet op=1 src=5009 dst=80
expect 2
packet op=1 src=5009 dst=80   # a second REQUEST for an open connection
expect 3
connections 0
