/* A stand-in for libnccl.so.2 on machines without a GPU, so the koffi bindings (src/backends/cuda/
 * nccl.ts) and the NCCL communicator's bucketing and error paths run in `npm test`.
 * Same entry points and ABI as nccl.h (the 128-byte ncclUniqueId passed by value), but "device"
 * buffers are host memory (fake_malloc & co. below) and every peer mirrors the caller: in a
 * communicator of n ranks each rank behaves as if all n held its data, so sum = n·x, max = min = x,
 * all-gather = n copies, reduce-scatter = this rank's slice of n·x, broadcast = the identity.
 * fake_set_async_error() makes ncclCommGetAsyncError report a failure, as NCCL does when a peer
 * dies. Built by test/fake-nccl.ts with the system C compiler. Not NCCL: no processes meet here. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { unsigned char internal[128]; } ncclUniqueId;
typedef struct { int nranks, rank, asyncError; char last[256]; } fake_comm;

enum { ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
       ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6 };
enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };
enum { ncclFloat32 = 7, ncclFloat64 = 8 };

static unsigned ids_issued = 0;
static int group_depth = 0;
static long collectives = 0;
static char global_last[256] = "";

int ncclGetVersion(int *version) { *version = 99999; return ncclSuccess; }

const char *ncclGetErrorString(int r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    default: return "unknown result code";
  }
}

const char *ncclGetLastError(fake_comm *comm) { return comm ? comm->last : global_last; }

/* id = "FAKENCCL", a serial number, then bytes 12.. = (i·7 + serial) mod 256: a by-value id that
   arrives scrambled fails the check in ncclCommInitRank */
int ncclGetUniqueId(ncclUniqueId *id) {
  unsigned serial = ++ids_issued;
  memcpy(id->internal, "FAKENCCL", 8);
  memcpy(id->internal + 8, &serial, 4);
  for (int i = 12; i < 128; i++) id->internal[i] = (unsigned char)(i * 7 + serial);
  return ncclSuccess;
}

int ncclCommInitRank(fake_comm **comm, int nranks, ncclUniqueId id, int rank) {
  unsigned serial;
  memcpy(&serial, id.internal + 8, 4);
  int ok = memcmp(id.internal, "FAKENCCL", 8) == 0;
  for (int i = 12; ok && i < 128; i++) ok = id.internal[i] == (unsigned char)(i * 7 + serial);
  if (!ok) { snprintf(global_last, sizeof global_last, "fake: the unique id is not one ncclGetUniqueId made"); return ncclInvalidArgument; }
  if (nranks < 1 || rank < 0 || rank >= nranks) { snprintf(global_last, sizeof global_last, "fake: rank %d of %d", rank, nranks); return ncclInvalidArgument; }
  fake_comm *c = calloc(1, sizeof *c);
  c->nranks = nranks;
  c->rank = rank;
  *comm = c;
  return ncclSuccess;
}

int ncclCommDestroy(fake_comm *comm) { free(comm); return ncclSuccess; }
int ncclCommAbort(fake_comm *comm) { free(comm); return ncclSuccess; }
int ncclCommGetAsyncError(fake_comm *comm, int *e) { *e = comm->asyncError; return ncclSuccess; }
int ncclCommCount(fake_comm *comm, int *n) { *n = comm->nranks; return ncclSuccess; }
int ncclCommUserRank(fake_comm *comm, int *r) { *r = comm->rank; return ncclSuccess; }
int ncclGroupStart(void) { group_depth++; return ncclSuccess; }
int ncclGroupEnd(void) { if (group_depth == 0) return ncclInvalidUsage; group_depth--; return ncclSuccess; }

static int check_type(fake_comm *comm, int type) {
  if (type == ncclFloat32 || type == ncclFloat64) return ncclSuccess;
  snprintf(comm->last, sizeof comm->last, "fake: data type %d not supported (f32, f64 only)", type);
  return ncclInvalidArgument;
}

/* x reduced over n mirrored ranks */
static double reduce(double x, int op, int n) {
  switch (op) {
    case ncclSum: { double s = 0; for (int i = 0; i < n; i++) s += x; return s; }
    case ncclProd: return pow(x, n);
    default: return x; /* max, min, avg of n equal values */
  }
}

static void reduce_into(void *recv, const void *send, size_t count, int type, int op, int n) {
  for (size_t i = 0; i < count; i++) {
    if (type == ncclFloat32) ((float *)recv)[i] = (float)reduce(((const float *)send)[i], op, n);
    else ((double *)recv)[i] = reduce(((const double *)send)[i], op, n);
  }
}

int ncclAllReduce(uint64_t send, uint64_t recv, size_t count, int type, int op, fake_comm *comm, void *stream) {
  (void)stream;
  int r = check_type(comm, type);
  if (r) return r;
  collectives++;
  reduce_into((void *)recv, (const void *)send, count, type, op, comm->nranks);
  return ncclSuccess;
}

int ncclReduceScatter(uint64_t send, uint64_t recv, size_t recvcount, int type, int op, fake_comm *comm, void *stream) {
  (void)stream;
  int r = check_type(comm, type);
  if (r) return r;
  collectives++;
  size_t bytes = type == ncclFloat32 ? 4 : 8;
  reduce_into((void *)recv, (const char *)send + comm->rank * recvcount * bytes, recvcount, type, op, comm->nranks);
  return ncclSuccess;
}

int ncclAllGather(uint64_t send, uint64_t recv, size_t sendcount, int type, fake_comm *comm, void *stream) {
  (void)stream;
  int r = check_type(comm, type);
  if (r) return r;
  collectives++;
  size_t bytes = sendcount * (type == ncclFloat32 ? 4 : 8);
  /* in place, send is recv's slot `rank`: fill the others from it, then (a no-op) itself */
  for (int k = 0; k < comm->nranks; k++) if (k != comm->rank) memmove((char *)recv + k * bytes, (const void *)send, bytes);
  memmove((char *)recv + comm->rank * bytes, (const void *)send, bytes);
  return ncclSuccess;
}

int ncclBroadcast(uint64_t send, uint64_t recv, size_t count, int type, int root, fake_comm *comm, void *stream) {
  (void)stream;
  int r = check_type(comm, type);
  if (r) return r;
  if (root < 0 || root >= comm->nranks) { snprintf(comm->last, sizeof comm->last, "fake: root %d of %d", root, comm->nranks); return ncclInvalidArgument; }
  collectives++;
  memmove((void *)recv, (const void *)send, count * (type == ncclFloat32 ? 4 : 8));
  return ncclSuccess;
}

/* ---- test helpers: host memory as "device" memory, counters, injected failures ---- */
uint64_t fake_malloc(size_t bytes) { return (uint64_t)malloc(bytes ? bytes : 1); }
void fake_free(uint64_t p) { free((void *)p); }
void fake_memcpy(uint64_t dst, uint64_t src, size_t n) { memmove((void *)dst, (const void *)src, n); }
void fake_memset(uint64_t dst, int value, size_t n) { memset((void *)dst, value, n); }
void fake_upload(uint64_t dst, const void *src, size_t n) { memcpy((void *)dst, src, n); }
void fake_download(void *dst, uint64_t src, size_t n) { memcpy(dst, (const void *)src, n); }
long fake_collectives(void) { return collectives; }
int fake_group_depth(void) { return group_depth; }
void fake_set_async_error(fake_comm *comm, int e) {
  comm->asyncError = e;
  snprintf(comm->last, sizeof comm->last, "fake: peer rank %d is gone", (comm->rank + 1) % comm->nranks);
}
