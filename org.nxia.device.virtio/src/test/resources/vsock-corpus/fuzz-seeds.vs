# Generated streams, replayed as the fuzz test ran them (seeds from its master sequence and by hand).
stream 1 300
stream 2 300
stream 7 300
stream -3906342525454745290 200
