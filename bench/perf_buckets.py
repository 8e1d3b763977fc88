"""Sums a perf profile's self time by subsystem: where fcsink's CPU goes.

Reads `perf report --no-children --sort dso,symbol --stdio -g none` output
(from a `bench-pipeline --perf FILE` run) on stdin and prints each subsystem's
share, then the top symbols. The first pattern that matches a row's
"dso symbol" text decides its subsystem; kernel rows go only to the kernel
subsystems, user rows only to the others.

    perf report -i FILE --no-children --sort dso,symbol --stdio -g none \\
        | python3 bench/perf_buckets.py
"""

import re
import sys
from collections import defaultdict

# (subsystem, pattern over "dso symbol"), first match wins.
BUCKETS = [
    ("kernel: futex, scheduling", r"futex|schedule|switch_to|finish_task|pick_next|wake_up|enqueue|dequeue|update_curr|update_load|__switch|cpuidle|select_task_rq"),
    ("kernel: network (TCP loopback)", r"tcp_|ip_|inet_|sock_|sk_|skb|__dev_queue|net_rx|loopback|__netif|__napi|nf_|__sys_send|__sys_recv|sendto|recvfrom|sendmsg|recvmsg"),
    ("kernel: epoll, syscalls", r"epoll|ep_poll|entry_SYSCALL|syscall|do_syscall|__x64_sys|fput|fget|__fdget"),
    ("kernel: memory", r"page_fault|clear_page|handle_mm|do_anonymous|__alloc_pages|rmqueue|memcg|madvise|zap_|unmap|mmap|lru_|folio"),
    ("kernel: other", r"."),
    ("malloc / free", r"malloc|free|realloc|calloc|_int_|tcache|arena|sysmalloc|alloc::alloc|__rdl_|__rust_alloc|__rust_dealloc|cfree"),
    ("memcpy / memmove / memset", r"memcpy|memmove|memset|memcmp|__memcpy|__memmove"),
    ("librdkafka", r" rd_|rd_kafka|rdkafka|librdkafka|crc32c|lz4|zstd|snappy"),
    ("JSON / payload format", r"serde_json|fcsink::format|ryu|itoa|json"),
    ("Wasm (wasmtime, plugin code)", r"wasmtime|cranelift|wasm|\[JIT\]|jitted|perf-\d+\.map|component"),
    ("signing (HMAC-SHA256, base64, dates)", r"sha2|sha256|hmac|fcsink_sign|base64|httpdate|time::format"),
    ("HTTP client (hyper, reqwest, h2)", r"hyper|reqwest|\bh2::|http::|httparse|tower"),
    ("tokio runtime", r"tokio|mio::|parking_lot|crossbeam"),
    ("tracing, metrics", r"tracing|metrics|prometheus"),
    ("pthread, libc (locks, syscall wrappers)", r"pthread|__lll_|lll_lock|sem_|condvar|libc\.so"),
    ("fcsink (other)", r"fcsink"),
]
ROW = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)$")


def main():
    shares = defaultdict(float)
    rows = []
    for line in sys.stdin:
        m = ROW.match(line)
        if not m:
            continue
        pct, dso, kind, symbol = float(m[1]), m[2], m[3], m[4].strip()
        kernel, text = kind == "k", f"{dso} {symbol}"
        bucket = next(
            (name for name, pattern in BUCKETS
             if name.startswith("kernel") == kernel and re.search(pattern, text)),
            "other",
        )
        shares[bucket] += pct
        rows.append((pct, dso, symbol, bucket))
    total = sum(shares.values())
    print(f"{'subsystem':<40} {'self %':>7}")
    for name, pct in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"{name:<40} {pct:>6.1f}%")
    print(f"{'(rows read)':<40} {total:>6.1f}%")
    print()
    print(f"{'self %':>7}  {'subsystem':<28} dso / symbol")
    for pct, dso, symbol, bucket in sorted(rows, reverse=True)[:40]:
        print(f"{pct:>6.2f}%  {bucket[:28]:<28} {dso} {symbol[:110]}")


if __name__ == "__main__":
    main()
