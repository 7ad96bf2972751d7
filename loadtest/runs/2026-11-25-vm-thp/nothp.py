import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_THP_DISABLE = 41
if libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
    sys.exit("prctl failed: %d" % ctypes.get_errno())
os.execvp(sys.argv[1], sys.argv[1:])
