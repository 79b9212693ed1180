# ruff: noqa: E501, E701, E702  (a measurement script kept as it was run)
import os
import resource
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

import embedkit as ek
from embedkit.store import Store

root="/tmp/svc_dbg/store"
if not os.path.exists(root):
    Store(root).save("toy", ek.Embeddings(["a","b"], np.eye(2,4,dtype=np.float32)).to_index())
port=int(sys.argv[1]) if len(sys.argv)>1 else 18777
def low():
    _,h=resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE,(1024,h))
p=subprocess.Popen([sys.executable,"-m","embedkit","--store",root,"serve","--port",str(port),"--log-level","debug"],preexec_fn=low,stdout=open("/tmp/svc_dbg/out","w"),stderr=open("/tmp/svc_dbg/err","w"))
for _ in range(300):
    try:
        if httpx.get(f"http://127.0.0.1:{port}/health",timeout=1).status_code==200: break
    except Exception: pass
    time.sleep(0.1)
print("up")
socks=[]
for _i in range(1100):
    socks.append(socket.create_connection(("127.0.0.1",port),timeout=5))
print("opened")
t=time.time()
try:
    r=httpx.get(f"http://127.0.0.1:{port}/health",timeout=8); print(r.status_code, time.time()-t)
except Exception as e: print("ERR",e, time.time()-t)
print(open(f"/proc/{p.pid}/limits").read().splitlines()[8], len(os.listdir(f"/proc/{p.pid}/fd")))
p.kill()
