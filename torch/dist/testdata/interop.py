"""Rank 1 of a two-rank gloo group whose rank 0 is a Go process (torch/dist).

python3 interop.py PORT OUT.json: connects to the Go rank's TCPStore on
127.0.0.1:PORT, makes torch.distributed's ProcessGroupGloo over it, runs the
collectives in the order TestInteropWithPyTorch does, and writes what it saw.
"""
import json
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

port, out = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
try:  # 2.x defaults to a libuv client, which Debian's build lacks
    store = dist.TCPStore("127.0.0.1", port, 2, False, timedelta(seconds=30), use_libuv=False)
except TypeError:  # 1.13 has no such option
    store = dist.TCPStore("127.0.0.1", port, 2, False, timedelta(seconds=30))
pg = dist.ProcessGroupGloo(store, 1, 2, timedelta(seconds=30))

# 1. all-reduce (sum) of a float32 tensor: rank r holds arange(6) * (r + 1).
a = torch.arange(6, dtype=torch.float32) * 2
pg.allreduce([a]).wait()
# 2. broadcast from rank 0 (Go) of a float64 [2, 3] tensor.
def bcast(t, root):
    o = dist.BroadcastOptions()
    o.rootRank = root
    pg.broadcast([t], o).wait()


b = torch.zeros(2, 3, dtype=torch.float64)
bcast(b, 0)
# 3. broadcast from rank 1 (here) of an int64 tensor.
c = torch.tensor([7, -3, 11], dtype=torch.int64)
bcast(c, 1)
# 4. all-reduce (max) of int32.
opts = dist.AllreduceOptions()
opts.reduceOp = dist.ReduceOp.MAX
d = torch.tensor([5, 1, 9], dtype=torch.int32)
pg.allreduce([d], opts).wait()
# 5. barrier, then a key the Go side reads from the same store.
pg.barrier().wait()
store.set("python/done", "yes")

json.dump({"allreduce": a.tolist(), "broadcast": b.tolist(), "max": d.tolist(), "torch": torch.__version__}, open(out, "w"))
