/* abi_test.c: exercises the shim's C ABI from plain C, as a C host would. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jmedseg.h"

static int failures = 0;

#define CHECK(cond, ...)                      \
  do {                                        \
    if (!(cond)) {                            \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);           \
      fprintf(stderr, "\n");                  \
      failures++;                             \
    }                                         \
  } while (0)

enum { FLOAT32 = 6, INT64 = 4, CPU = 0 };

int main(void) {
  char ver[64];
  jt_error *err = jt_runtime_version(ver, sizeof ver);
  CHECK(err == NULL, "runtime version failed");
  CHECK(strncmp(ver, jt_header_version(), 4) == 0 || strcmp(ver, "unknown") == 0,
        "runtime %s vs headers %s", ver, jt_header_version());

  int64_t count0, bytes0;
  jt_live(&count0, &bytes0);

  /* y = sum(x*x), dy/dx = 2x */
  float data[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  jt_result x = jt_from_data(data, sizeof data, shape, 2, FLOAT32);
  CHECK(x.err == NULL, "from_data");
  CHECK(jt_dim(x.t) == 2 && jt_numel(x.t) == 6, "shape");
  CHECK(jt_set_requires_grad(x.t, 1) == NULL, "requires_grad");
  jt_result sq = jt_binary(JT_MUL, x.t, x.t);
  jt_result y = jt_reduce(JT_SUM, sq.t, NULL, -1, 0);
  double v = 0;
  CHECK(jt_item(y.t, &v) == NULL && fabs(v - 91) < 1e-6, "sum of squares: %g", v);
  CHECK(jt_backward(y.t, NULL, 0, 0) == NULL, "backward");
  jt_result g = jt_grad(x.t);
  float grad[6];
  CHECK(g.err == NULL && g.t != NULL, "grad");
  CHECK(jt_copy_to(g.t, grad, sizeof grad, FLOAT32) == NULL, "copy_to");
  for (int i = 0; i < 6; i++) CHECK(grad[i] == 2 * data[i], "grad[%d]=%g", i, grad[i]);

  /* errors come back as values with a message, never as a crash */
  jt_result bad = jt_matmul(x.t, x.t);
  CHECK(bad.t == NULL && bad.err != NULL, "matmul of 2x3 by 2x3 must fail");
  if (bad.err) {
    CHECK(strstr(bad.err->msg, "cannot be multiplied") != NULL, "message: %s", bad.err->msg);
    CHECK(bad.err->kind == JT_ERR_GENERIC, "kind %d", bad.err->kind);
    jt_error_free(bad.err);
  }
  jt_result oob = jt_select(x.t, 0, 9);
  CHECK(oob.err != NULL && oob.err->kind == JT_ERR_INDEX, "index error kind");
  jt_error_free(oob.err);

  /* grad mode is per thread and restorable */
  int prev = jt_set_grad_enabled(0);
  jt_result ng = jt_binary_scalar(JT_MUL, x.t, 2.0);
  CHECK(!jt_requires_grad(ng.t), "no grad recorded with grad mode off");
  jt_set_grad_enabled(prev);

  jt_free(ng.t);
  jt_free(g.t);
  jt_free(y.t);
  jt_free(sq.t);
  jt_free(x.t);
  int64_t count1, bytes1;
  jt_live(&count1, &bytes1);
  CHECK(count1 == count0 && bytes1 == bytes0, "live handles %lld -> %lld", (long long)count0, (long long)count1);

  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("abi_test: all checks passed\n");
  return 0;
}
