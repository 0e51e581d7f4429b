/*
 * jmedseg.h: the model-level C API of jmedseg (libjmedseg.so).
 *
 * Load a model file trained by `jmedseg train` (a run's best.safetensors) and
 * segment images with it from C or C++, with the same preprocessing and the
 * same labels as `jmedseg predict`.
 *
 * Conventions:
 *  - A function that can fail returns a jms_error* (NULL on success) or takes
 *    a jms_error** (set to NULL on success, to a new error on failure; the
 *    pointer itself may be NULL when the caller does not want the error).
 *    Every failure, including a NULL argument, is an error with a message:
 *    nothing in this library aborts the host. Free errors with
 *    jms_error_free.
 *  - Models are safe for concurrent use: several host threads may call the
 *    predict functions on one model at once. jms_free waits for the calls
 *    under way and must not race with calls made after it (as with free()).
 *  - Strings returned by the library are owned by it: jms_version's live for
 *    the process, a model's (jms_info.model, jms_class_name) until jms_free,
 *    an error's message until jms_error_free.
 */
#ifndef JMEDSEG_JMEDSEG_H
#define JMEDSEG_JMEDSEG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this API; jms_version's string starts with it. */
#define JMS_VERSION "1.0.0"

typedef struct jms_model jms_model;
typedef struct jms_error jms_error;

/* A loaded model: input channels, classes, the input size it was trained at
   (images are resized to it), and its registered name (owned by the model). */
typedef struct jms_info {
  int64_t in_channels, classes, height, width;
  const char *model;
} jms_info;

/* What went wrong, for hosts that react to it (jms_error_code). */
enum {
  JMS_ERR_ARGUMENT = 1,   /* a NULL pointer, a bad count or channel number */
  JMS_ERR_CHECKPOINT = 2, /* the model file is missing, unreadable or corrupt */
  JMS_ERR_DEVICE = 3,     /* an unknown device, or CUDA asked for and absent */
  JMS_ERR_SIZE = 4,       /* an input size the model cannot take */
  JMS_ERR_RUNTIME = 5,    /* libtorch failed while running the model */
  JMS_ERR_OUT_OF_MEMORY = 6,
  JMS_ERR_INTERNAL = 7    /* a bug in jmedseg (caught, never crashes the host) */
};

/* JMS_VERSION " (libtorch X.Y.Z)". */
const char *jms_version(void);

/* Loads a model file for inference on device: "cpu", "cuda", "cuda:N" or
   "auto" (CUDA when available). NULL means "cpu". Returns NULL and sets
   *err on failure. */
jms_model *jms_load(const char *checkpoint, const char *device, jms_error **err);

/* Fills *out; out->model is owned by the model. */
jms_error *jms_info_get(jms_model *m, jms_info *out);

/* The name of class k (0 is the background), owned by the model; NULL when
   m is NULL or k is out of range. */
const char *jms_class_name(jms_model *m, int64_t k);

/* An 8-bit grey (channels 1) or RGB (channels 3, interleaved, row-major)
   image of any size h*w in; its label map (class ids, row-major, h*w bytes)
   out, with the same preprocessing as `jmedseg predict`: resized to the
   model's input size, converted to the model's channels as in training
   (RGB to grey by luma, grey replicated), normalised as the model file
   records; the prediction resized back by nearest neighbour. */
jms_error *jms_predict_u8(jms_model *m, const uint8_t *pixels, int64_t h, int64_t w, int64_t channels,
                          uint8_t *labels_out);

/* Already normalised NCHW float input (c must be the model's in_channels,
   h and w a size the model takes); class probabilities out (the softmax of
   the logits over classes, n*classes*h*w floats, NCHW). */
jms_error *jms_predict_f32(jms_model *m, const float *nchw, int64_t n, int64_t c, int64_t h, int64_t w,
                           float *probs_out);

/* The model input jms_predict_u8 makes of an image: in_channels*height*width
   floats (CHW at the model's input size, jms_info), ready for
   jms_predict_f32. */
jms_error *jms_preprocess_u8(jms_model *m, const uint8_t *pixels, int64_t h, int64_t w, int64_t channels,
                             float *chw_out);

/* Sets libtorch's intra-op thread count for the process (n >= 1). */
jms_error *jms_set_num_threads(int64_t n);

/* Diagnostics for a host's leak tests: the libtorch tensors alive in this
   library (a loaded model's parameters and buffers, nothing else between
   calls), the bytes their elements span, and how many tensors the garbage
   collector's safety net had to release (0 unless jmedseg has a bug). Each
   pointer may be NULL. */
void jms_tensor_stats(int64_t *live, int64_t *bytes, int64_t *leaked);

/* Frees the model after the calls under way return. NULL is a no-op. */
void jms_free(jms_model *m);

/* The message; "" for NULL. */
const char *jms_error_message(const jms_error *e);

/* One of the JMS_ERR_* codes; 0 for NULL. */
int jms_error_code(const jms_error *e);

/* Frees an error. NULL is a no-op. */
void jms_error_free(jms_error *e);

#ifdef __cplusplus
}
#endif

#endif /* JMEDSEG_JMEDSEG_H */
