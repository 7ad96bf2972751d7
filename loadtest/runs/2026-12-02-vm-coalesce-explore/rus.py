import os, sys, resource, time
t0=time.time()
pid=os.fork()
if pid==0:
    os.execvp(sys.argv[1], sys.argv[1:])
_,st,ru=os.wait4(pid,0)
w=time.time()-t0
sys.stderr.write(f"rusage wall={w:.2f} utime={ru.ru_utime:.3f} stime={ru.ru_stime:.3f} nvcsw={ru.ru_nvcsw} nivcsw={ru.ru_nivcsw}\n")
