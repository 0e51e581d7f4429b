/*
 * capi_test: every function of the model-level C API (include/jmedseg/jmedseg.h)
 * and every error case, against a model trained by `jmedseg train`.
 *
 *   capi_test CHECKPOINT SLICE.png
 *
 * CHECKPOINT is a 1-channel, 2-class model (ctest trains a tiny U-Net on the
 * brain data at 64x64 first), SLICE.png a held-out slice of that data. Checks: errors with codes and messages for NULL
 * pointers, missing and corrupt files, unknown devices, absent CUDA, channel
 * and size mismatches; jms_predict_u8 equal to jms_preprocess_u8 +
 * jms_predict_f32 + nearest-neighbour resizing; batches equal single calls;
 * concurrent calls from pthreads equal serial ones; no tensor left alive
 * after hundreds of calls or after jms_free, and bounded memory growth.
 */
#include <jmedseg/jmedseg.h>

#include <math.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      failures++;                                                          \
      fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);     \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
    }                                                                      \
  } while (0)

/* expect_err checks that e is an error with code and a message containing
   want (when want is not NULL), and frees it. */
static void expect_err_at(const char *where, jms_error *e, int code, const char *want) {
  if (e == NULL) {
    failures++;
    fprintf(stderr, "FAIL: %s: no error (want code %d)\n", where, code);
    return;
  }
  const char *msg = jms_error_message(e);
  if (jms_error_code(e) != code || msg == NULL || msg[0] == '\0' || (want && !strstr(msg, want))) {
    failures++;
    fprintf(stderr, "FAIL: %s: code %d message \"%s\" (want code %d, message with \"%s\")\n", where,
            jms_error_code(e), msg ? msg : "(null)", code, want ? want : "");
  }
  jms_error_free(e);
}
#define STR2(x) #x
#define STR(x) STR2(x)
#define EXPECT_ERR(e, code, want) expect_err_at(__FILE__ ":" STR(__LINE__), (e), (code), (want))

#define EXPECT_OK(call)                                                      \
  do {                                                                       \
    jms_error *e_ = (call);                                                  \
    if (e_) {                                                                \
      failures++;                                                            \
      fprintf(stderr, "%s:%d: FAIL: %s: %s\n", __FILE__, __LINE__, #call,    \
              jms_error_message(e_));                                        \
      jms_error_free(e_);                                                    \
    }                                                                        \
  } while (0)

static int64_t live_tensors(void) {
  int64_t n = -1;
  jms_tensor_stats(&n, NULL, NULL);
  return n;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A synthetic 8-bit image: a bright disc on a dark ramp, so that a model
   trained on brain slices gives both classes somewhere. */
static uint8_t *make_image(int64_t h, int64_t w, int64_t channels, int seed) {
  uint8_t *p = malloc((size_t)(h * w * channels));
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double dy = (y - h / 2.0) / h, dx = (x - w / 2.0) / w;
      int v = (dx * dx + dy * dy < 0.09) ? 200 : (int)(30 * x / w);
      v = (v + 7 * seed + (int)((x * 31 + y * 17) % 23)) % 256;
      for (int64_t c = 0; c < channels; c++) p[(y * w + x) * channels + c] = (uint8_t)((v + 40 * c) % 256);
    }
  return p;
}

static jms_model *model;
static jms_info info;

/* The fixture's held-out brain slice (64x64 grey) as 8-bit samples; a
   synthetic image need not look like anything the tiny model learned, so
   only a real slice can show that a prediction is not degenerate. */
static uint8_t *slice;
static int64_t slice_h, slice_w;

static int load_slice(const char *path) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path)) {
    fprintf(stderr, "%s: %s\n", path, im.message);
    return 0;
  }
  im.format = PNG_FORMAT_GRAY;
  slice = malloc(PNG_IMAGE_SIZE(im));
  if (!png_image_finish_read(&im, NULL, slice, 0, NULL)) {
    fprintf(stderr, "%s: %s\n", path, im.message);
    return 0;
  }
  slice_h = im.height, slice_w = im.width;
  return 1;
}

/* slice_pixels is the real slice with each grey sample in every channel. */
static uint8_t *slice_pixels(int64_t channels) {
  uint8_t *p = malloc((size_t)(slice_h * slice_w * channels));
  for (int64_t i = 0; i < slice_h * slice_w; i++)
    for (int64_t c = 0; c < channels; c++) p[i * channels + c] = slice[i];
  return p;
}

static void test_version(void) {
  const char *v = jms_version();
  CHECK(v != NULL, "jms_version is NULL");
  if (v) {
    CHECK(strncmp(v, JMS_VERSION, strlen(JMS_VERSION)) == 0, "jms_version \"%s\" does not start with %s", v, JMS_VERSION);
    CHECK(strstr(v, "libtorch") != NULL, "jms_version \"%s\" names no libtorch", v);
    CHECK(jms_version() == v, "jms_version returns a new string each call");
  }
}

static void test_errors_without_model(const char *checkpoint, const char *dir) {
  jms_error *e = NULL;
  /* NULL checkpoint */
  CHECK(jms_load(NULL, "cpu", &e) == NULL, "loaded NULL");
  EXPECT_ERR(e, JMS_ERR_ARGUMENT, "NULL");
  /* err may be NULL: the failure is still a NULL model, not a crash */
  CHECK(jms_load(NULL, "cpu", NULL) == NULL, "loaded NULL");
  /* a missing file: the message names it */
  char missing[512];
  snprintf(missing, sizeof missing, "%s/none.safetensors", dir);
  CHECK(jms_load(missing, "cpu", &e) == NULL, "loaded a missing file");
  EXPECT_ERR(e, JMS_ERR_CHECKPOINT, missing);
  /* corrupt files: truncated, garbage, an empty file, a directory */
  char path[512];
  snprintf(path, sizeof path, "%s/truncated.safetensors", dir);
  FILE *in = fopen(checkpoint, "rb"), *out = fopen(path, "wb");
  CHECK(in && out, "cannot copy %s", checkpoint);
  if (in && out) {
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in); /* the header and a little data */
    fwrite(buf, 1, n, out);
  }
  if (in) fclose(in);
  if (out) fclose(out);
  CHECK(jms_load(path, "cpu", &e) == NULL, "loaded a truncated file");
  EXPECT_ERR(e, JMS_ERR_CHECKPOINT, path);
  const char *bodies[] = {"", "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", "not a model file at all, just text\n"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/bad%d.safetensors", dir, i);
    out = fopen(path, "wb");
    fwrite(bodies[i], 1, strlen(bodies[i]) + (i == 1 ? 8 : 0), out);
    fclose(out);
    CHECK(jms_load(path, "cpu", &e) == NULL, "loaded %s", path);
    EXPECT_ERR(e, JMS_ERR_CHECKPOINT, path);
  }
  CHECK(jms_load(dir, "cpu", &e) == NULL, "loaded a directory");
  EXPECT_ERR(e, JMS_ERR_CHECKPOINT, dir);
  /* devices: unknown names, and CUDA where this libtorch has none (or an
     index past the visible GPUs where it has) */
  const char *bad_devices[] = {"tpu", "cuda:x", "", "cpu0"};
  for (int i = 0; i < 4; i++) {
    if (bad_devices[i][0] == '\0') continue; /* "" is the CPU, as in the CLI */
    CHECK(jms_load(checkpoint, bad_devices[i], &e) == NULL, "loaded on %s", bad_devices[i]);
    EXPECT_ERR(e, JMS_ERR_DEVICE, bad_devices[i]);
  }
  CHECK(jms_load(checkpoint, "cuda:99", &e) == NULL, "loaded on cuda:99");
  EXPECT_ERR(e, JMS_ERR_DEVICE, "cuda");
  /* functions on a NULL model */
  jms_info i;
  EXPECT_ERR(jms_info_get(NULL, &i), JMS_ERR_ARGUMENT, "NULL");
  CHECK(jms_class_name(NULL, 0) == NULL, "class name of a NULL model");
  uint8_t px[64 * 64] = {0}, lab[64 * 64];
  float f[64 * 64], p[2 * 64 * 64];
  EXPECT_ERR(jms_predict_u8(NULL, px, 64, 64, 1, lab), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_preprocess_u8(NULL, px, 64, 64, 1, f), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_predict_f32(NULL, f, 1, 1, 64, 64, p), JMS_ERR_ARGUMENT, "NULL");
  jms_free(NULL);
  /* errors themselves */
  CHECK(jms_error_message(NULL) != NULL && jms_error_message(NULL)[0] == '\0', "message of NULL");
  CHECK(jms_error_code(NULL) == 0, "code of NULL");
  jms_error_free(NULL);
  EXPECT_ERR(jms_set_num_threads(0), JMS_ERR_ARGUMENT, "0 threads");
  EXPECT_ERR(jms_set_num_threads(-3), JMS_ERR_ARGUMENT, "-3");
  EXPECT_OK(jms_set_num_threads(2));
  /* One intra-op thread from here on: OpenMP's spinning threads make a
     loaded 2-core machine (CI) ten times slower. */
  EXPECT_OK(jms_set_num_threads(1));
}

static void test_load_and_info(const char *checkpoint) {
  int64_t before = live_tensors();
  CHECK(before == 0, "%lld tensors alive before any model", (long long)before);
  jms_error *e = (jms_error *)&failures; /* must be overwritten with NULL */
  jms_model *m = jms_load(checkpoint, NULL, &e);
  CHECK(m != NULL && e == NULL, "jms_load(NULL device) failed: %s", e ? jms_error_message(e) : "");
  jms_free(m);
  CHECK(live_tensors() == before, "%lld tensors alive after jms_free", (long long)live_tensors());
  model = jms_load(checkpoint, "cpu", &e);
  CHECK(model != NULL && e == NULL, "jms_load: %s", e ? jms_error_message(e) : "");
  if (!model) {
    fprintf(stderr, "cannot go on without a model\n");
    exit(1);
  }
  EXPECT_ERR(jms_info_get(model, NULL), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_OK(jms_info_get(model, &info));
  CHECK(info.in_channels == 1 && info.classes == 2, "in_channels %lld classes %lld", (long long)info.in_channels,
        (long long)info.classes);
  CHECK(info.height == 64 && info.width == 64, "size %lldx%lld", (long long)info.height, (long long)info.width);
  CHECK(info.model && strcmp(info.model, "unet") == 0, "model \"%s\"", info.model ? info.model : "(null)");
  for (int64_t k = 0; k < info.classes; k++) {
    const char *n = jms_class_name(model, k);
    CHECK(n != NULL && n[0] != '\0', "class %lld has no name", (long long)k);
    CHECK(jms_class_name(model, k) == n, "class name %lld is a new string each call", (long long)k);
  }
  CHECK(jms_class_name(model, -1) == NULL, "class -1");
  CHECK(jms_class_name(model, info.classes) == NULL, "class %lld", (long long)info.classes);
  CHECK(jms_class_name(model, INT64_MAX) == NULL, "class INT64_MAX");
}

/* A zeroed block is no model: the Go side's handle lookup panics, and the
   panic comes back as an internal error rather than a crash. */
static void test_forged_model(void) {
  void *fake = calloc(1, 256);
  jms_info i;
  EXPECT_ERR(jms_info_get((jms_model *)fake, &i), JMS_ERR_INTERNAL, "internal error");
  uint8_t px[16] = {0}, lab[16];
  EXPECT_ERR(jms_predict_u8((jms_model *)fake, px, 4, 4, 1, lab), JMS_ERR_INTERNAL, "jms_predict_u8");
  CHECK(jms_class_name((jms_model *)fake, 0) == NULL, "class name of a forged model");
  free(fake);
}

static void test_bad_arguments(void) {
  uint8_t *px = make_image(64, 64, 3, 0);
  uint8_t lab[64 * 64];
  float f[3 * 64 * 64], p[2 * 64 * 64 * 2];
  EXPECT_ERR(jms_predict_u8(model, NULL, 64, 64, 1, lab), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_predict_u8(model, px, 64, 64, 1, NULL), JMS_ERR_ARGUMENT, "NULL");
  int64_t bad_channels[] = {0, 2, 4, -1};
  for (int i = 0; i < 4; i++) {
    EXPECT_ERR(jms_predict_u8(model, px, 64, 64, bad_channels[i], lab), JMS_ERR_ARGUMENT, "channels");
    EXPECT_ERR(jms_preprocess_u8(model, px, 64, 64, bad_channels[i], f), JMS_ERR_ARGUMENT, "channels");
  }
  int64_t bad_sizes[][2] = {{0, 64}, {64, 0}, {-5, 64}, {1 << 20, 1 << 20}, {INT64_MAX, 2}};
  for (int i = 0; i < 5; i++) {
    EXPECT_ERR(jms_predict_u8(model, px, bad_sizes[i][0], bad_sizes[i][1], 1, lab), JMS_ERR_SIZE, "size");
    EXPECT_ERR(jms_preprocess_u8(model, px, bad_sizes[i][0], bad_sizes[i][1], 1, f), JMS_ERR_SIZE, "size");
  }
  EXPECT_ERR(jms_preprocess_u8(model, NULL, 64, 64, 1, f), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_preprocess_u8(model, px, 64, 64, 1, NULL), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_predict_f32(model, NULL, 1, 1, 64, 64, p), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_predict_f32(model, f, 1, 1, 64, 64, NULL), JMS_ERR_ARGUMENT, "NULL");
  EXPECT_ERR(jms_predict_f32(model, f, 0, 1, 64, 64, p), JMS_ERR_ARGUMENT, "batch size");
  EXPECT_ERR(jms_predict_f32(model, f, -2, 1, 64, 64, p), JMS_ERR_ARGUMENT, "batch size");
  /* channels mismatch: the model takes 1 */
  EXPECT_ERR(jms_predict_f32(model, f, 1, 3, 64, 64, p), JMS_ERR_ARGUMENT, "1 input channel");
  EXPECT_ERR(jms_predict_f32(model, f, 1, 0, 64, 64, p), JMS_ERR_ARGUMENT, "input channel");
  /* sizes a U-Net cannot take: not multiples of 16, non-positive, huge */
  int64_t bad_f32[][2] = {{30, 64}, {64, 40}, {8, 8}, {0, 64}, {-16, 64}};
  for (int i = 0; i < 5; i++)
    EXPECT_ERR(jms_predict_f32(model, f, 1, 1, bad_f32[i][0], bad_f32[i][1], p), JMS_ERR_SIZE, "multiples of 16");
  EXPECT_ERR(jms_predict_f32(model, f, 1, 1, 1 << 20, 1 << 20, p), JMS_ERR_SIZE, "too large");
  EXPECT_ERR(jms_predict_f32(model, f, INT64_MAX, 1, 64, 64, p), JMS_ERR_SIZE, "too large");
  free(px);
}

/* nearest neighbour from an sw*sh label map to ow*oh, as infer does */
static void resize_labels(const uint8_t *src, int64_t sw, int64_t sh, uint8_t *dst, int64_t ow, int64_t oh) {
  for (int64_t y = 0; y < oh; y++) {
    int64_t sy = (int64_t)((y + 0.5) * sh / oh);
    if (sy > sh - 1) sy = sh - 1;
    for (int64_t x = 0; x < ow; x++) {
      int64_t sx = (int64_t)((x + 0.5) * sw / ow);
      if (sx > sw - 1) sx = sw - 1;
      dst[y * ow + x] = src[sy * sw + sx];
    }
  }
}

static void argmax(const float *probs, int64_t classes, int64_t n, uint8_t *out) {
  for (int64_t i = 0; i < n; i++) {
    int64_t best = 0;
    for (int64_t k = 1; k < classes; k++)
      if (probs[k * n + i] > probs[best * n + i]) best = k;
    out[i] = (uint8_t)best;
  }
}

/* jms_predict_u8 is jms_preprocess_u8, jms_predict_f32, argmax and a
   nearest-neighbour resize back: for grey and RGB images at the model's
   size and at others. */
static void test_predict_consistency(void) {
  const int64_t H = info.height, W = info.width, K = info.classes, C = info.in_channels;
  int64_t sizes[][2] = {{slice_h, slice_w}, {37, 50}, {128, 96}, {1, 1}};
  for (int s = 0; s < 4; s++)
    for (int64_t ch = 1; ch <= 3; ch += 2) {
      int64_t h = sizes[s][0], w = sizes[s][1];
      uint8_t *px = s == 0 ? slice_pixels(ch) : make_image(h, w, ch, s);
      uint8_t *lab = malloc((size_t)(h * w)), *want = malloc((size_t)(h * w)), small[64 * 64];
      float *x = malloc(sizeof(float) * (size_t)(C * H * W)), *p = malloc(sizeof(float) * (size_t)(K * H * W));
      memset(lab, 0xff, (size_t)(h * w));
      EXPECT_OK(jms_predict_u8(model, px, h, w, ch, lab));
      EXPECT_OK(jms_preprocess_u8(model, px, h, w, ch, x));
      EXPECT_OK(jms_predict_f32(model, x, 1, C, H, W, p));
      double lo = 1, hi = 0, worst = 0;
      for (int64_t i = 0; i < C * H * W; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
      }
      CHECK(lo >= 0 && hi <= 1, "input range [%g, %g] for unit scaling", lo, hi);
      for (int64_t i = 0; i < H * W; i++) {
        double sum = 0;
        for (int64_t k = 0; k < K; k++) {
          float v = p[k * H * W + i];
          CHECK(v >= 0 && v <= 1, "probability %g", v);
          sum += v;
        }
        if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
      }
      CHECK(worst < 1e-5, "probabilities sum to 1 within %g", worst);
      argmax(p, K, H * W, small);
      resize_labels(small, W, H, want, w, h);
      int64_t diff = 0, fg = 0;
      for (int64_t i = 0; i < h * w; i++) {
        diff += lab[i] != want[i];
        fg += lab[i] != 0;
        CHECK(lab[i] < K, "label %d", lab[i]);
      }
      CHECK(diff == 0, "%lldx%lld channels %lld: %lld of %lld labels differ from preprocess+f32", (long long)h,
            (long long)w, (long long)ch, (long long)diff, (long long)(h * w));
      if (s == 0)
        CHECK(fg > 0 && fg < h * w, "the held-out slice's prediction is degenerate: %lld foreground pixels", (long long)fg);
      free(px), free(lab), free(want), free(x), free(p);
    }
}

/* A batch of n gives each image's probabilities as n single calls do,
   across the Predictor's batch limit (16). */
static void test_batch(void) {
  const int64_t n = 18, H = 64, W = 64, K = info.classes;
  float *x = malloc(sizeof(float) * (size_t)(n * H * W)), *p = malloc(sizeof(float) * (size_t)(n * K * H * W));
  float one[2 * 64 * 64];
  for (int64_t i = 0; i < n; i++) {
    uint8_t *px = make_image(H, W, 1, (int)i);
    EXPECT_OK(jms_preprocess_u8(model, px, H, W, 1, x + i * H * W));
    free(px);
  }
  EXPECT_OK(jms_predict_f32(model, x, n, 1, H, W, p));
  double worst = 0;
  for (int64_t i = 0; i < n; i += 5) {
    EXPECT_OK(jms_predict_f32(model, x + i * H * W, 1, 1, H, W, one));
    for (int64_t j = 0; j < K * H * W; j++) {
      double d = fabs(one[j] - p[i * K * H * W + j]);
      if (d > worst) worst = d;
    }
  }
  CHECK(worst < 1e-5, "batch and single calls differ by %g", worst);
  /* another size the model takes (multiples of 16) */
  EXPECT_OK(jms_predict_f32(model, x, 1, 1, 32, 128, p));
  free(x), free(p);
}

/* "cuda" is an error naming CUDA where this libtorch has none; where it
   has, the GPU's probabilities and labels are the CPU's. */
static void test_cuda(const char *checkpoint) {
  jms_error *e = NULL;
  jms_model *g = jms_load(checkpoint, "cuda", &e);
  if (g == NULL) {
    EXPECT_ERR(e, JMS_ERR_DEVICE, "CUDA");
    return;
  }
  printf("CUDA is available: comparing the GPU with the CPU\n");
  enum { H = 64, W = 64 };
  uint8_t *px = make_image(H, W, 1, 3), lab[H * W], glab[H * W];
  float x[H * W], p[2 * H * W], gp[2 * H * W];
  EXPECT_OK(jms_preprocess_u8(model, px, H, W, 1, x));
  EXPECT_OK(jms_predict_f32(model, x, 1, 1, H, W, p));
  EXPECT_OK(jms_predict_f32(g, x, 1, 1, H, W, gp));
  double worst = 0;
  for (int i = 0; i < 2 * H * W; i++)
    if (fabs(p[i] - gp[i]) > worst) worst = fabs(p[i] - gp[i]);
  CHECK(worst < 1e-4, "GPU and CPU probabilities differ by %g", worst);
  EXPECT_OK(jms_predict_u8(model, px, H, W, 1, lab));
  EXPECT_OK(jms_predict_u8(g, px, H, W, 1, glab));
  int diff = 0;
  for (int i = 0; i < H * W; i++) diff += lab[i] != glab[i];
  CHECK(diff <= H * W / 1000, "%d GPU labels differ from the CPU's", diff);
  jms_free(g);
  free(px);
}

typedef struct {
  int id, iters;
  const uint8_t *img;
  const uint8_t *want;
  int64_t h, w;
  int mismatches, errors;
} worker;

static void *work(void *arg) {
  worker *wk = arg;
  uint8_t *lab = malloc((size_t)(wk->h * wk->w));
  float x[64 * 64], p[2 * 64 * 64];
  for (int i = 0; i < wk->iters; i++) {
    jms_error *e = jms_predict_u8(model, wk->img, wk->h, wk->w, 1, lab);
    if (e) {
      wk->errors++;
      jms_error_free(e);
      continue;
    }
    if (memcmp(lab, wk->want, (size_t)(wk->h * wk->w)) != 0) wk->mismatches++;
    if (i % 4 == 0) { /* mix in the other entry points */
      e = jms_preprocess_u8(model, wk->img, wk->h, wk->w, 1, x);
      if (!e) e = jms_predict_f32(model, x, 1, 1, 64, 64, p);
      if (e) wk->errors++, jms_error_free(e);
    }
  }
  free(lab);
  return NULL;
}

/* Several host threads on one model at once give the serial results. */
static void test_threads(void) {
  enum { T = 4, ITERS = 25 };
  pthread_t th[T];
  worker wk[T];
  uint8_t *imgs[T], *want[T];
  for (int t = 0; t < T; t++) {
    int64_t h = 48 + 16 * t, w = 64;
    imgs[t] = make_image(h, w, 1, t);
    want[t] = malloc((size_t)(h * w));
    EXPECT_OK(jms_predict_u8(model, imgs[t], h, w, 1, want[t]));
    wk[t] = (worker){t, ITERS, imgs[t], want[t], h, w, 0, 0};
  }
  for (int t = 0; t < T; t++) pthread_create(&th[t], NULL, work, &wk[t]);
  for (int t = 0; t < T; t++) {
    pthread_join(th[t], NULL);
    CHECK(wk[t].errors == 0 && wk[t].mismatches == 0, "thread %d: %d errors, %d results unlike the serial one", t,
          wk[t].errors, wk[t].mismatches);
    free(imgs[t]), free(want[t]);
  }
}

/* Hundreds of calls leave no tensor alive and memory flat. */
static void test_leaks(const char *checkpoint) {
  int64_t base = live_tensors(), leaked0 = -1, leaked1 = -1;
  jms_tensor_stats(NULL, NULL, &leaked0);
  uint8_t *px = make_image(96, 80, 3, 1), lab[96 * 80];
  float x[64 * 64], p[2 * 64 * 64];
  for (int i = 0; i < 20; i++) EXPECT_OK(jms_predict_u8(model, px, 96, 80, 3, lab)); /* warm up */
  long rss0 = rss_kib();
  for (int i = 0; i < 100; i++) {
    EXPECT_OK(jms_predict_u8(model, px, 96, 80, 3, lab));
    EXPECT_OK(jms_preprocess_u8(model, px, 96, 80, 3, x));
    EXPECT_OK(jms_predict_f32(model, x, 1, 1, 64, 64, p));
    jms_error_free(jms_predict_f32(model, x, 1, 1, 30, 30, p)); /* errors free cleanly too */
  }
  long rss1 = rss_kib();
  CHECK(live_tensors() == base, "%lld tensors alive after 400 calls, %lld before", (long long)live_tensors(),
        (long long)base);
  jms_tensor_stats(NULL, NULL, &leaked1);
  CHECK(leaked1 == leaked0, "the safety net released %lld tensors", (long long)(leaked1 - leaked0));
  printf("rss %ld KiB -> %ld KiB over 400 calls; %lld tensors alive (the model's)\n", rss0, rss1, (long long)base);
  CHECK(rss1 - rss0 < 64 * 1024, "memory grew by %ld KiB over 400 calls", rss1 - rss0);
  /* loading and freeing a model many times */
  for (int i = 0; i < 20; i++) {
    jms_error *e = NULL;
    jms_model *m = jms_load(checkpoint, "cpu", &e);
    CHECK(m != NULL, "reload %d: %s", i, jms_error_message(e));
    jms_error_free(e);
    if (m) EXPECT_OK(jms_predict_u8(m, px, 96, 80, 3, lab));
    jms_free(m);
  }
  CHECK(live_tensors() == base, "%lld tensors alive after 20 loads and frees", (long long)live_tensors());
  free(px);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define TIMED(call)                                           \
  do {                                                        \
    double t0_ = now();                                       \
    call;                                                     \
    printf("%-40s %6.2f s\n", #call, now() - t0_);            \
    fflush(stdout);                                           \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: capi_test CHECKPOINT SLICE.png\n");
    return 2;
  }
  if (!load_slice(argv[2])) return 2;
  char dir[] = "/tmp/capi_test.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  TIMED(test_version());
  TIMED(test_errors_without_model(argv[1], dir));
  TIMED(test_load_and_info(argv[1]));
  TIMED(test_forged_model());
  TIMED(test_bad_arguments());
  TIMED(test_predict_consistency());
  TIMED(test_batch());
  TIMED(test_cuda(argv[1]));
  TIMED(test_threads());
  TIMED(test_leaks(argv[1]));
  jms_free(model);
  free(slice);
  CHECK(live_tensors() == 0, "%lld tensors alive after the last jms_free", (long long)live_tensors());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (failures) {
    fprintf(stderr, "capi_test: %d failure(s)\n", failures);
    return 1;
  }
  printf("capi_test: all checks passed\n");
  return 0;
}
