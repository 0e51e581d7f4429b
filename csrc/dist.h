/* dist.h: the C ABI of jmedseg's distributed training over PyTorch's c10d
 * (TCPStore, ProcessGroupGloo, the DDP Reducer) and SyncBatchNorm.
 *
 * Conventions are jmedseg.h's: every call that can fail returns its own
 * jt_error (NULL = success, freed with jt_error_free); tensors are
 * jt_tensor handles of jmedseg.cc, which these functions read and write
 * but never make or free.
 */
#ifndef JMEDSEG_DIST_H
#define JMEDSEG_DIST_H

#include <stdint.h>

#include "jmedseg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *jd_store;   /* c10d::Store (a TCPStore, maybe behind a PrefixStore) */
typedef void *jd_group;   /* c10d::ProcessGroup with its gloo backend */
typedef void *jd_reducer; /* c10d::Reducer: bucketed gradient all-reduce */

/* Reduce operations, c10d::ReduceOp's values. */
enum { JD_SUM = 0, JD_AVG = 1, JD_PRODUCT = 2, JD_MIN = 3, JD_MAX = 4 };

/* TCPStore: the server listens on port (master != 0), clients connect to
 * host:port; timeout_ms bounds connecting and every blocking get/wait. */
jt_error *jd_store_new(const char *host, int port, int world, int master, int64_t timeout_ms, jd_store *out);
/* A view of store whose keys are prefixed (c10d::PrefixStore). */
jt_error *jd_store_prefix(jd_store store, const char *prefix, jd_store *out);
jt_error *jd_store_set(jd_store store, const char *key, const void *value, int64_t len);
/* get blocks until key exists (or the timeout); *value is malloc'd, free it
 * with jd_bytes_free. */
jt_error *jd_store_get(jd_store store, const char *key, void **value, int64_t *len);
jt_error *jd_store_add(jd_store store, const char *key, int64_t delta, int64_t *out);
jt_error *jd_store_check(jd_store store, const char *key, int *exists);
void jd_bytes_free(void *p);
void jd_store_free(jd_store store);

/* A gloo process group of world ranks over store. iface: a network
 * interface or host name to bind ("" = the machine's host name). threads:
 * gloo worker threads (0 = 2). timeout_ms bounds every collective. */
jt_error *jd_group_new(jd_store store, int rank, int world, const char *backend, const char *iface, int threads,
                       int64_t timeout_ms, jd_group *out);
int jd_group_rank(jd_group g);
int jd_group_size(jd_group g);
/* In place, synchronous; all tensors of one call go in one collective. */
jt_error *jd_allreduce(jd_group g, jt_tensor *ts, int n, int op);
jt_error *jd_broadcast(jd_group g, jt_tensor *ts, int n, int root);
jt_error *jd_barrier(jd_group g);
void jd_group_free(jd_group g);

/* The DDP Reducer over params (leaf tensors that require grad): gradients
 * are averaged over the group in buckets of bucket_bytes (the first bucket
 * 1 MiB, as DDP), each launched from autograd hooks as soon as its
 * gradients are ready, so communication overlaps the rest of backward.
 * Call jd_reducer_prepare_forward before each training forward and
 * jd_reducer_prepare_backward(outputs) between it and backward. */
jt_error *jd_reducer_new(jd_group g, jt_tensor *params, int n, int64_t bucket_bytes, int find_unused, jd_reducer *out);
jt_error *jd_reducer_prepare_forward(jd_reducer r);
jt_error *jd_reducer_prepare_backward(jd_reducer r, jt_tensor *outputs, int n);
void jd_reducer_free(jd_reducer r);

/* Training-mode batch norm whose statistics (mean, biased variance, count)
 * are all-reduced over g in forward, and whose backward all-reduces the
 * per-channel sums of dy and dy*(x-mean), as torch.nn.SyncBatchNorm.
 * weight/bias/running stats may be NULL; running stats are updated in place
 * with the unbiased global variance. The result replaces the tensor of
 * handle out (one the caller made, of x's shape). */
jt_error *jd_sync_batch_norm(jd_group g, jt_tensor x, jt_tensor weight, jt_tensor bias, jt_tensor running_mean,
                             jt_tensor running_var, double momentum, double eps, jt_tensor out);

/* The element count of t as this file reads handles (a layout check). */
int64_t jd_handle_numel(jt_tensor t);

/* 1 when this build has the named backend ("gloo", "nccl"). */
int jd_has_backend(const char *backend);

#ifdef __cplusplus
}
#endif

#endif
