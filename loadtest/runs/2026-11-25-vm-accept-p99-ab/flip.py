import os, sys, time
# flip.py DIR: every second, point DIR/state.json at state-b.json, then state-a.json, ... (atomic rename of a new symlink); no fork per flip
d = sys.argv[1]; i = 0
while True:
    i += 1
    nxt = os.path.join(d, "state-b.json" if i % 2 else "state-a.json")
    tmp = os.path.join(d, "state.next")
    try: os.unlink(tmp)
    except FileNotFoundError: pass
    os.symlink(nxt, tmp)
    os.replace(tmp, os.path.join(d, "state.json"))
    time.sleep(1)
