import time
while True:
    b = bytes(1) * (512 << 20)
    del b
