/* perf.h: the C ABI of jmedseg's performance helpers over libtorch: memory
 * formats (channels-last), autocast (bf16 on CPU and CUDA, fp16 on CUDA),
 * multi-tensor (_foreach_) updates for optimizers, and CUDA graphs.
 *
 * Conventions are jmedseg.h's: every call that can fail returns its own
 * jt_error (NULL = success, freed with jt_error_free) or a jt_result; no
 * thread-local error. Tensors are jmedseg.cc's jt_tensor handles; new
 * handles are made through jt_shallow, so the live-tensor counters count
 * them. Thread-local libtorch state (autocast, the current CUDA stream) is
 * set by enter/exit pairs that the caller runs on one OS thread.
 */
#ifndef JMEDSEG_PERF_H
#define JMEDSEG_PERF_H

#include <stdint.h>

#include "jmedseg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- memory formats ---- */
enum { JP_CONTIGUOUS = 0, JP_CHANNELS_LAST = 1 };
/* t.contiguous(format): the same tensor where it already is (a new handle). */
jt_result jp_contiguous_as(jt_tensor t, int format);
int jp_is_contiguous_as(jt_tensor t, int format);

/* ---- autocast ----
 * jp_autocast_enter turns autocast on for dev_type (JT device type: 0 CPU,
 * 1 CUDA) with dtype (a JT dtype: bfloat16 or float16) on the calling
 * thread and returns the state to restore; jp_autocast_exit restores it on
 * the same thread (and clears the cast cache when the outermost region
 * ends, as torch.autocast does). NULL with *err set when refused. */
void *jp_autocast_enter(int dev_type, int dtype, jt_error **err);
void jp_autocast_exit(void *state);
int jp_autocast_enabled(int dev_type); /* on the calling thread */

/* ---- oneDNN convolutions ----
 * jp_conv2d is at::conv2d (stride, padding, dilation: 2 values each; b may
 * be NULL), except that a float32 CPU convolution of a 4-D input runs
 * at::mkldnn_convolution (oneDNN) while the switch is on (the default),
 * libtorch has MKLDNN and the user has not disabled it, autocast is off on
 * the CPU and no tracer is recording. *used (when not NULL) says which ran.
 * The switch is process-wide. *used: 0 at::conv2d, 1 oneDNN's direct
 * kernel, 2 its Winograd kernel (csrc/wino.cc). */
jt_result jp_conv2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups, int *used);
/* jp_conv_transpose2d is at::conv_transpose2d (stride, padding,
 * output_padding, dilation: 2 values each; b may be NULL), except that,
 * under jp_conv2d's conditions, a transposed convolution whose square
 * kernel equals its stride (no padding, output padding or dilation, one
 * group: U-Net decoders' up-sampling) runs as the 1×1 convolution to
 * out·s² channels on oneDNN and pixel_shuffle(s), the same sums: libtorch
 * runs those on its native kernel (slow_conv_transpose2d, im2col and the
 * BLAS); any other strided one of one group without dilation (p < k,
 * output padding < stride) runs as the stride-1 convolution, on oneDNN, of
 * the input spread out by the stride with zeros, by the flipped kernel.
 * *used (when not NULL): 0 at::conv_transpose2d, 1 the 1×1 form, 2 the
 * spread-out form. */
jt_result jp_conv_transpose2d(jt_tensor x, jt_tensor w, jt_tensor b, const int64_t *stride, const int64_t *padding,
                              const int64_t *output_padding, const int64_t *dilation, int64_t groups, int *used);
void jp_set_onednn_conv(int on);
int jp_onednn_conv(void);
int jp_has_mkldnn(void);
/* Sets the calling thread's override (-1: none, 0: off) and returns the
 * previous one. */
int jp_onednn_conv_thread(int v);

/* ---- Winograd 3×3 convolutions (csrc/wino.cc; csrc/wino_none.cc where
 * the build has no oneDNN 2) ----
 * jp_winograd_set sets the mode (0 off, 1 inference: no gradient recorded,
 * 2 inference and training) and returns the previous one; a change empties
 * the cache of packed weights. jp_winograd_available is 1 where oneDNN
 * offers the kernels on this CPU. jp_winograd_cached counts the weights
 * packed for inference and (in *bytes) what they hold. */
int jp_winograd_set(int mode);
int jp_winograd_mode(void);
int jp_winograd_available(void);
int64_t jp_winograd_cached(int64_t *bytes);
void jp_winograd_clear(void);
/* jp_winograd_set_buffers sets the most bytes of oneDNN's own buffers one
 * inference convolution may take (a larger batch runs in pieces; a value
 * below 1 changes nothing) and returns the previous value;
 * jp_winograd_pieces counts the inference calls that ran in pieces. */
int64_t jp_winograd_set_buffers(int64_t bytes);
int64_t jp_winograd_pieces(void);

/* ---- multi-tensor updates (n tensors per list; in place on xs) ---- */
jt_error *jp_foreach_mul_scalar_(jt_tensor *xs, int64_t n, double s);
jt_error *jp_foreach_add_scalar_(jt_tensor *xs, int64_t n, double s);
jt_error *jp_foreach_div_scalar_(jt_tensor *xs, int64_t n, double s);
jt_error *jp_foreach_add_list_(jt_tensor *xs, jt_tensor *ys, int64_t n, double alpha); /* xs += alpha*ys */
jt_error *jp_foreach_addcmul_(jt_tensor *xs, jt_tensor *a, jt_tensor *b, int64_t n, double value);
jt_error *jp_foreach_addcdiv_(jt_tensor *xs, jt_tensor *a, jt_tensor *b, int64_t n, double value);
jt_error *jp_foreach_maximum_(jt_tensor *xs, jt_tensor *ys, int64_t n);
jt_error *jp_foreach_copy_(jt_tensor *xs, jt_tensor *ys, int64_t n);
/* Out of place: out receives n new handles. */
jt_error *jp_foreach_sqrt(jt_tensor *xs, int64_t n, jt_tensor *out);
jt_error *jp_foreach_add_list(jt_tensor *xs, jt_tensor *ys, int64_t n, double alpha, jt_tensor *out);
/* The gradients of params: out[i] is a new handle, or NULL where none. */
jt_error *jp_grads(jt_tensor *params, int64_t n, jt_tensor *out);

/* ---- CUDA graphs (a build with JMEDSEG_CUDA; elsewhere every call but
 * jp_cuda_graphs_built fails with a message saying so) ---- */
typedef void *jp_graph;
int jp_cuda_graphs_built(void);
jt_error *jp_graph_new(int dev_index, jp_graph *out);
/* Between begin and end the calling thread's current stream is the
 * graph's capture stream: run the captured work on that thread. */
jt_error *jp_graph_capture_begin(jp_graph g);
jt_error *jp_graph_capture_end(jp_graph g);
jt_error *jp_graph_replay(jp_graph g);
/* Run work on the graph's stream without capturing it (warm-up before a
 * capture, as torch.cuda.graphs recommends): begin makes it the calling
 * thread's current stream, end waits for it and restores the old one. */
jt_error *jp_graph_side_begin(jp_graph g);
jt_error *jp_graph_side_end(jp_graph g);
void jp_graph_free(jp_graph g);
jt_error *jp_cuda_synchronize(int dev_index);

#ifdef __cplusplus
}
#endif

#endif
