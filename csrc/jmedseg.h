/* jmedseg.h: the C ABI of the jmedseg libtorch shim.
 *
 * Every function that can fail returns its own error (NULL = success) or a
 * struct whose err field is NULL on success. Nothing is kept in thread-local
 * storage, so callers (cgo goroutines that move between OS threads) never
 * read another call's error. Errors are freed with jt_error_free.
 *
 * A jt_tensor is an owning handle to an at::Tensor; free it with jt_free.
 * Optional tensor arguments accept NULL. Integer lists are (pointer, length).
 */
#ifndef JMEDSEG_H
#define JMEDSEG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *jt_tensor;

/* Error kinds: JT_ERR_OOM lets a trainer react to running out of memory. */
enum { JT_ERR_GENERIC = 1, JT_ERR_OOM = 2, JT_ERR_INDEX = 3, JT_ERR_VALUE = 4, JT_ERR_TYPE = 5 };

typedef struct jt_error {
  int kind;
  char *msg;
} jt_error;

typedef struct jt_result {
  jt_tensor t;
  jt_error *err;
} jt_result;

void jt_error_free(jt_error *e);

/* ---- library, threads, devices, RNG ---- */
const char *jt_header_version(void);             /* static string */
jt_error *jt_runtime_version(char *buf, int64_t cap); /* TORCH_VERSION from the loaded library */
void jt_set_num_threads(int n);
int jt_get_num_threads(void);
/* The CPU block cache (csrc/cpualloc.cc): blocks of 1 MiB and up are kept at
 * free, up to limit bytes, and reused. jt_cpu_cache_set_limit returns the
 * previous limit (a negative value changes nothing; 0 turns caching off and
 * frees the cache); jt_cpu_cache_stats returns the bytes held and fills
 * blocks, hits and misses (each may be NULL); jt_cpu_cache_empty frees them,
 * and the idle kernel scratch. jt_cpu_scratch_bytes is the bytes of kernel
 * working memory (Winograd's buffers) kept between calls (none with the
 * cache off). */
int64_t jt_cpu_cache_set_limit(int64_t limit);
int64_t jt_cpu_cache_stats(int64_t *blocks, int64_t *hits, int64_t *misses);
void jt_cpu_cache_empty(void);
int64_t jt_cpu_scratch_bytes(void);
int jt_cuda_is_available(void);
int jt_cuda_device_count(void);
void jt_manual_seed(uint64_t seed);
jt_result jt_rng_get_state(void);
jt_error *jt_rng_set_state(jt_tensor state);
int jt_set_grad_enabled(int enabled); /* returns the previous mode of this thread */
int jt_is_grad_enabled(void);
void *jt_inference_mode_enter(void);  /* RAII guard, exit on the same thread */
void jt_inference_mode_exit(void *guard);
void jt_live(int64_t *count, int64_t *bytes);

/* ---- lifetime and metadata ---- */
void jt_free(jt_tensor t);
int64_t jt_dim(jt_tensor t);
void jt_sizes(jt_tensor t, int64_t *out); /* out holds jt_dim entries */
void jt_strides(jt_tensor t, int64_t *out);
int jt_dtype(jt_tensor t);
void jt_device(jt_tensor t, int *type, int *index);
int64_t jt_numel(jt_tensor t);
int jt_is_contiguous(jt_tensor t);
int jt_defined(jt_tensor t);

/* ---- creation and copies ---- */
jt_result jt_empty(const int64_t *shape, int64_t nd, int dtype, int dev_type, int dev_index);
jt_result jt_zeros(const int64_t *shape, int64_t nd, int dtype, int dev_type, int dev_index);
jt_result jt_ones(const int64_t *shape, int64_t nd, int dtype, int dev_type, int dev_index);
jt_result jt_full(const int64_t *shape, int64_t nd, double value, int dtype, int dev_type, int dev_index);
jt_result jt_arange(double start, double end, double step, int dtype, int dev_type, int dev_index);
jt_result jt_rand(const int64_t *shape, int64_t nd, int dtype, int dev_type, int dev_index);
jt_result jt_randn(const int64_t *shape, int64_t nd, int dtype, int dev_type, int dev_index);
jt_result jt_randint(int64_t low, int64_t high, const int64_t *shape, int64_t nd, int dtype, int dev_type,
                     int dev_index);
jt_result jt_randperm(int64_t n, int dev_type, int dev_index);
jt_result jt_eye(int64_t n, int64_t m, int dtype, int dev_type, int dev_index);
jt_result jt_from_data(const void *data, int64_t nbytes, const int64_t *shape, int64_t nd, int dtype);
jt_error *jt_copy_to(jt_tensor t, void *dst, int64_t nbytes, int dtype);
jt_error *jt_item(jt_tensor t, double *out);
jt_result jt_to(jt_tensor t, int dev_type, int dev_index, int dtype, int non_blocking, int copy);
jt_result jt_pin_memory(jt_tensor t);
jt_result jt_clone(jt_tensor t);
jt_result jt_contiguous(jt_tensor t);
jt_result jt_shallow(jt_tensor t); /* a second handle to the same tensor */

/* ---- autograd ---- */
jt_error *jt_set_requires_grad(jt_tensor t, int req);
int jt_requires_grad(jt_tensor t);
int jt_is_leaf(jt_tensor t);
jt_error *jt_backward(jt_tensor t, jt_tensor grad, int retain_graph, int create_graph);
jt_result jt_grad(jt_tensor t); /* t==NULL in the result when no gradient exists */
jt_error *jt_set_grad(jt_tensor t, jt_tensor grad);
jt_error *jt_zero_grad(jt_tensor t, int set_to_none);
jt_error *jt_retain_grad(jt_tensor t);
jt_result jt_detach(jt_tensor t);

/* ---- shape ---- */
jt_result jt_view(jt_tensor t, const int64_t *s, int64_t n);
jt_result jt_reshape(jt_tensor t, const int64_t *s, int64_t n);
jt_result jt_permute(jt_tensor t, const int64_t *s, int64_t n);
jt_result jt_expand(jt_tensor t, const int64_t *s, int64_t n);
jt_result jt_transpose(jt_tensor t, int64_t d0, int64_t d1);
jt_result jt_flatten(jt_tensor t, int64_t start, int64_t end);
jt_result jt_squeeze(jt_tensor t, int64_t dim, int all);
jt_result jt_unsqueeze(jt_tensor t, int64_t dim);
jt_result jt_narrow(jt_tensor t, int64_t dim, int64_t start, int64_t len);
jt_result jt_select(jt_tensor t, int64_t dim, int64_t index);
jt_result jt_index_select(jt_tensor t, int64_t dim, jt_tensor index);
jt_result jt_gather(jt_tensor t, int64_t dim, jt_tensor index);
jt_result jt_roll(jt_tensor t, const int64_t *shifts, const int64_t *dims, int64_t n);
jt_result jt_pad(jt_tensor t, const int64_t *pad, int64_t n, int mode, double value);
jt_result jt_cat(const jt_tensor *ts, int64_t n, int64_t dim);
jt_result jt_stack(const jt_tensor *ts, int64_t n, int64_t dim);
/* split (chunks==0: by size) or chunk (chunks>0); out must hold cap handles; *n gets the count. */
jt_error *jt_split(jt_tensor t, int64_t size, int64_t chunks, int64_t dim, jt_tensor *out, int64_t cap,
                   int64_t *n);
jt_result jt_flip(jt_tensor t, const int64_t *dims, int64_t n);
jt_result jt_repeat(jt_tensor t, const int64_t *s, int64_t n);

/* ---- arithmetic and math ---- */
enum {
  JT_ADD, JT_SUB, JT_MUL, JT_DIV, JT_POW, JT_EQ, JT_NE, JT_LT, JT_LE, JT_GT, JT_GE, JT_MAXIMUM, JT_MINIMUM,
  JT_LOGICAL_AND, JT_LOGICAL_OR, JT_ATAN2, JT_REMAINDER, JT_RSUB, JT_FLOOR_DIVIDE
};
jt_result jt_binary(int op, jt_tensor a, jt_tensor b);
jt_result jt_binary_scalar(int op, jt_tensor a, double s);
jt_error *jt_binary_(int op, jt_tensor a, jt_tensor b); /* in place on a */
jt_error *jt_binary_scalar_(int op, jt_tensor a, double s);
jt_result jt_add_scaled(jt_tensor a, jt_tensor b, double alpha); /* a + alpha*b */
jt_error *jt_add_scaled_(jt_tensor a, jt_tensor b, double alpha);
jt_error *jt_addcmul_(jt_tensor a, jt_tensor b, jt_tensor c, double value);
jt_error *jt_addcdiv_(jt_tensor a, jt_tensor b, jt_tensor c, double value);
jt_error *jt_lerp_(jt_tensor a, jt_tensor end, double weight);
jt_error *jt_copy_(jt_tensor dst, jt_tensor src);
jt_error *jt_fill_(jt_tensor t, double v);
jt_error *jt_zero_(jt_tensor t);
jt_error *jt_clamp_(jt_tensor t, double lo, double hi, int has_lo, int has_hi);

enum {
  JT_NEG, JT_ABS, JT_EXP, JT_LOG, JT_LOG1P, JT_SQRT, JT_RSQRT, JT_SIN, JT_COS, JT_TANH, JT_SIGMOID, JT_RELU,
  JT_FLOOR, JT_CEIL, JT_ROUND, JT_SIGN, JT_RECIPROCAL, JT_SQUARE, JT_LOGICAL_NOT, JT_ISNAN, JT_ISFINITE,
  JT_SILU, JT_ERF, JT_LOG2, JT_EXPM1
};
jt_result jt_unary(int op, jt_tensor a);
jt_error *jt_unary_(int op, jt_tensor a);
jt_result jt_clamp(jt_tensor t, double lo, double hi, int has_lo, int has_hi);
jt_result jt_where(jt_tensor cond, jt_tensor a, jt_tensor b);
jt_result jt_masked_fill(jt_tensor t, jt_tensor mask, double v);
jt_result jt_matmul(jt_tensor a, jt_tensor b);
jt_result jt_mm(jt_tensor a, jt_tensor b);
jt_result jt_bmm(jt_tensor a, jt_tensor b);
jt_result jt_linear(jt_tensor x, jt_tensor w, jt_tensor b);

/* ---- reductions ---- */
enum { JT_SUM, JT_MEAN, JT_AMAX, JT_AMIN, JT_PROD, JT_ANY, JT_ALL, JT_LOGSUMEXP };
/* nd < 0 reduces over every dimension */
jt_result jt_reduce(int op, jt_tensor t, const int64_t *dims, int64_t nd, int keepdim);
jt_error *jt_max_dim(jt_tensor t, int64_t dim, int keepdim, int is_min, jt_result *values, jt_result *indices);
jt_result jt_argmax(jt_tensor t, int64_t dim, int keepdim, int has_dim, int is_min);
jt_result jt_norm(jt_tensor t, double p, const int64_t *dims, int64_t nd, int keepdim);
jt_result jt_var(jt_tensor t, const int64_t *dims, int64_t nd, int unbiased, int keepdim, int is_std);
jt_result jt_cumsum(jt_tensor t, int64_t dim);
jt_result jt_bincount(jt_tensor t, jt_tensor weights, int64_t minlength);

/* ---- neural network ops ---- */
jt_result jt_softmax(jt_tensor t, int64_t dim, int log);
jt_result jt_conv(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                  const int64_t *dilation, int64_t nsp, int64_t groups);
jt_result jt_conv_transpose2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride,
                              const int64_t *padding, const int64_t *output_padding, const int64_t *dilation,
                              int64_t groups);
jt_result jt_batch_norm(jt_tensor x, jt_tensor w, jt_tensor b, jt_tensor rm, jt_tensor rv, int training,
                        double momentum, double eps);
jt_result jt_instance_norm(jt_tensor x, jt_tensor w, jt_tensor b, jt_tensor rm, jt_tensor rv,
                           int use_input_stats, double momentum, double eps);
jt_result jt_group_norm(jt_tensor x, int64_t groups, jt_tensor w, jt_tensor b, double eps);
jt_result jt_layer_norm(jt_tensor x, const int64_t *shape, int64_t n, jt_tensor w, jt_tensor b, double eps);
jt_result jt_leaky_relu(jt_tensor x, double slope);
jt_result jt_hardtanh(jt_tensor x, double lo, double hi);
jt_result jt_gelu(jt_tensor x, int tanh_approx);
jt_result jt_elu(jt_tensor x, double alpha);
jt_result jt_dropout(jt_tensor x, double p, int train, int feature);
jt_error *jt_max_pool2d(jt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d,
                        int ceil_mode, int with_indices, jt_result *out, jt_result *indices);
jt_result jt_max_unpool2d(jt_tensor x, jt_tensor indices, const int64_t *size);
jt_result jt_avg_pool2d(jt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil_mode,
                        int count_include_pad);
jt_result jt_adaptive_avg_pool2d(jt_tensor x, const int64_t *size);
jt_error *jt_adaptive_max_pool2d(jt_tensor x, const int64_t *size, jt_result *out, jt_result *indices);
/* mode 0 nearest, 1 bilinear; scale <= 0 means "derive from sizes" */
jt_result jt_upsample2d(jt_tensor x, const int64_t *size, int mode, int align_corners, double scale_h,
                        double scale_w);
jt_result jt_affine_grid(jt_tensor theta, const int64_t *size, int64_t n, int align_corners);
/* mode 0 bilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection */
jt_result jt_grid_sample(jt_tensor x, jt_tensor grid, int mode, int padding, int align_corners);
/* reduction 0 none, 1 mean, 2 sum */
jt_result jt_cross_entropy(jt_tensor x, jt_tensor target, jt_tensor weight, int reduction, int64_t ignore_index,
                           double label_smoothing);
jt_result jt_nll_loss(jt_tensor x, jt_tensor target, jt_tensor weight, int reduction, int64_t ignore_index);
jt_result jt_mse_loss(jt_tensor x, jt_tensor target, int reduction);
jt_result jt_bce_with_logits(jt_tensor x, jt_tensor target, jt_tensor weight, jt_tensor pos_weight, int reduction);
jt_result jt_one_hot(jt_tensor t, int64_t classes);
jt_result jt_embedding(jt_tensor weight, jt_tensor indices);

/* ---- added for torch/nn and torch/optim ---- */
jt_error *jt_uniform_(jt_tensor t, double from, double to); /* in place, default generator */
jt_error *jt_normal_(jt_tensor t, double mean, double std);
jt_error *jt_set_data(jt_tensor t, jt_tensor src); /* t.set_data(src): new data, same autograd identity */
jt_error *jt_add_int_(jt_tensor t, int64_t v);     /* t += v with an integer scalar (int64 counters) */


#ifdef __cplusplus
}
#endif

#endif
