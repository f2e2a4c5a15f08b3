import sys, re, collections
cats=[
 ('worker threads: sign (ACCP)', lambda t,f: t.startswith('asyncctx-software') and any('ThreadConfined.perform' in x for x in f)),
 ('worker threads: queue take / park / wake', lambda t,f: t.startswith('asyncctx-software') and any('ArrayBlockingQueue.take' in x for x in f)),
 ('worker threads: complete + eventfd write', lambda t,f: t.startswith('asyncctx-software')),
 ('loop: ClosedChannelException at close', lambda t,f: any('ClosedChannelException.<init>' in x for x in f)),
 ('loop: epoll_ctl (autoRead toggle, fd (de)registration)', lambda t,f: t.startswith('multiThread') and 'epoll_ctl' in f[-1] and not any('doClose' in x or 'doRegister' in x for x in f)),
 ('loop: queue offer + worker unpark', lambda t,f: any('ArrayBlockingQueue.offer' in x for x in f)),
 ('loop: library submit/pause (job, promise, timer, metrics)', lambda t,f: t.startswith('multiThread') and any('AsyncOffloadHandler.submit' in x for x in f) and not any('performInline' in x for x in f)),
 ('loop: inline sign (policy)', lambda t,f: any('performInline' in x for x in f)),
 ('loop: wake-up by the wait fd (drain, resume, job bookkeeping)', lambda t,f: any('WaitFdHandle' in x for x in f) and not any('SslHandler' in x for x in f)),
 ('loop: connection open/close bookkeeping', lambda t,f: any(re.search(r'AsyncOffloadConnection\.(open|close)|AsyncOffloadHandler.teardown|handlerAdded',x) for x in f) and not any('SslHandler' in x for x in f)),
 ('loop: send/writev/recv syscalls', lambda t,f: t.startswith('multiThread') and re.match(r'(__GI___send|writev|recv|__GI_write|read)$',f[-1]) is not None),
 ('loop: epoll_wait', lambda t,f: t.startswith('multiThread') and f[-1].startswith('epoll_pwait')),
 ('loop: BoringSSL (tcnative native)', lambda t,f: t.startswith('multiThread') and 'tcnative' in f[-1]),
 ('loop: other (Netty Java, HTTP, SslHandler, accept/close)', lambda t,f: t.startswith('multiThread')),
 ('GC threads', lambda t,f: t.startswith('GC Thread') or t.startswith('G1')),
 ('JIT compilers', lambda t,f: 'Compiler' in t),
 ('other JVM threads', lambda t,f: True),
]
def run(p, us_per_hs_total):
    c=collections.Counter(); tot=0
    for line in open(p):
        s,_,n=line.rstrip().rpartition(' '); n=int(n); f=s.split(';'); t=f[0].strip('[')
        tot+=n
        for name,fn in cats:
            if fn(t,f): c[name]+=n; break
    scale=us_per_hs_total/tot
    return {k:c[k]*scale for k,_ in cats}, tot
names=sys.argv[1::2]; figs=[float(x) for x in sys.argv[2::2]]
res=[run(n,f) for n,f in zip(names,figs)]
print('| category (us of CPU per handshake) | '+' | '.join(n.split('/')[0] for n in names)+' |')
print('|---|'+'---:|'*len(names))
for k,_ in cats:
    print('| %s | %s |'%(k,' | '.join('%.1f'%r[0][k] for r in res)))
print('| total (measured, /proc) | %s |'%' | '.join('%.0f'%f for f in figs))
print('| samples | %s |'%' | '.join(str(r[1]) for r in res))
