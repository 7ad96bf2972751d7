import ctypes
n = 64 << 20
buf = ctypes.create_string_buffer(n)
addr = ctypes.addressof(buf)
v = 0
while True:
    v = (v + 1) & 0xFF
    ctypes.memset(addr, v, n)
