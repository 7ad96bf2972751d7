while :; do dd if=/tmp/exp/state1.json of=/dev/null bs=1M 2>/dev/null; sleep 0.5; done
