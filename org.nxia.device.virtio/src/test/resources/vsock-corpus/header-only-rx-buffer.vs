# issue 12 item 10: receive buffers of exactly 44 bytes got a zero-length OP_RW for every buffer posted.
rx 44
packet op=1 src=5000 dst=80
expect 2
accept
write 4
expect 3
silent
connections 0
