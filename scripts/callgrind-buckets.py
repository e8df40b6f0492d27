#!/usr/bin/env python3
"""Self (exclusive) instructions of a callgrind profile by owner: our code,
AsyncHTTPClient, NIO, librabbitmq, the Swift runtime (retain/release,
allocation, concurrency), the standard library, libc. Usage:
  scripts/callgrind-buckets.py PROFILE [MESSAGES] [TOP]
With MESSAGES the figures are also given per message; TOP (default 25) lists
the costliest functions (self)."""
import re, subprocess, sys

path = sys.argv[1]
per = float(sys.argv[2]) if len(sys.argv) > 2 else None
top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True, text=True).stdout
rows = []
for line in out.splitlines():
    m = re.match(r"\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(.*?):(.*) \[(.*)\]\s*$", line)
    if not m:
        continue
    ir = int(m.group(1).replace(",", ""))
    rows.append((ir, m.group(3), m.group(4)))

def bucket(fn, obj):
    if "librabbitmq" in obj: return "librabbitmq"
    if "libc.so" in obj or "ld-linux" in obj: return "libc (malloc/free, memcpy, syscalls stubs)"
    if "libssl" in obj or "libcrypto" in obj: return "OpenSSL"
    if "libstdc++" in obj or "libgcc" in obj: return "libstdc++"
    s = fn
    if s.startswith("$s15AsyncHTTPClient") or "AsyncHTTPClient" in s[:40]: return "AsyncHTTPClient"
    if re.match(r"\$s\d+NIO", s) or s.startswith("$s7NIOCore") or "NIO" in s[:12]: return "SwiftNIO"
    if s.startswith("$s8RabbitMQ"): return "ours: RabbitMQ (Swift)"
    if s.startswith("$s10DariBridge") and not s.startswith("$s10DariBridgeApp"): return "ours: DariBridge"
    if s.startswith("$s13DariBridgeApp"): return "ours: DariBridgeApp"
    if s.startswith("$s7Logging") : return "swift-log"
    if s.startswith("$s16ServiceLifecycle") or s.startswith("$s15ServiceLifecycle"): return "ServiceLifecycle"
    if s.startswith("$s20FoundationEssentials") or s.startswith("$s10Foundation") or s.startswith("$s26FoundationInternationalization"): return "Foundation"
    if re.search(r"swift_(retain|release|bridgeObjectRetain|bridgeObjectRelease|unknownObject|nonatomic|isUniquelyReferenced)", s) or "_swift_release_" in s or "_swift_retain_" in s or "RefCounts<" in s: return "Swift runtime: retain/release"
    if re.search(r"GenericMetadata|MetadataCache|getCache\(|ConcurrentMap|ConcurrentReadableHashMap|conformsToProtocol|ConformanceCache|tryCast|dynamicCast|awaitSatisfyingState|_checkGenericRequirements|MetadataAllocator|swift_getTypeByMangled|swift_getAssociated|swift_getWitnessTable|\$s\w+Ma$", s): return "Swift runtime: generic metadata + dynamic casts"
    if re.search(r"swift_beginAccess|swift_endAccess|AccessSet|SwiftTLSContext", s): return "Swift runtime: exclusivity checks"
    if re.search(r"swift_(allocObject|deallocObject|slowAlloc|slowDealloc|allocBox|deallocClassInstance|initStackObject|deallocPartial|deallocUninit)", s) or "swift_task_alloc" in s or "swift_task_dealloc" in s or "StackAllocator" in s or "TaskAlloc" in s: return "Swift runtime: allocation"
    if re.search(r"swift_task|swift_job|swift_continuation|swift::|_dispatch|dispatch_|swift_asyncLet|Executor|swift_Concurrency|swift_get.*Executor|jobInvoke|^\$sSc|^\$ss5Mutex", s): return "Swift concurrency runtime + dispatch"
    if s.startswith("$ss") or s.startswith("$sS") or s.startswith("swift_") or s.startswith("$s"): return "Swift stdlib/runtime (other)"
    if s.startswith("amqp_"): return "librabbitmq"
    return "other C (static: BoringSSL, zlib, malloc?)"

total = sum(r[0] for r in rows)
b = {}
for ir, fn, obj in rows:
    k = bucket(fn, obj)
    b[k] = b.get(k, 0) + ir
print(f"total self Ir {total:,}" + (f"  ({total/per:,.0f} per message)" if per else ""))
for k, v in sorted(b.items(), key=lambda kv: -kv[1]):
    print(f"  {v/total*100:5.1f} %  {v/per:10,.0f}/msg  {k}" if per else f"  {v/total*100:5.1f} %  {k}")
print(f"\ntop {top} functions (self):")
for ir, fn, obj in sorted(rows, key=lambda r: -r[0])[:top]:
    print(f"  {ir/total*100:5.1f} %  " + (f"{ir/per:9,.0f}/msg  " if per else "") + f"{fn[:150]}  [{obj.split('/')[-1]}]")
