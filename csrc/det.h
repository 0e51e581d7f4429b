/* det.h: the C ABI of libtorch's determinism switches
 * (torch.use_deterministic_algorithms and the cuDNN flags behind
 * torch.backends.cudnn.deterministic / .benchmark). They are process-wide
 * (at::globalContext()), not per thread. */
#ifndef JMEDSEG_DET_H
#define JMEDSEG_DET_H

#ifdef __cplusplus
extern "C" {
#endif

/* jd_set_deterministic(on, warn_only): at::globalContext()
 * .setDeterministicAlgorithms(on, warn_only); with on it also sets cuDNN
 * deterministic and turns cuDNN benchmarking off (with off it clears the
 * cuDNN deterministic flag and leaves benchmarking as it is). */
void jd_set_deterministic(int on, int warn_only);
/* 1 when deterministic algorithms are on, else 0. */
int jd_deterministic(void);
/* 1 when the warn-only mode is on (nondeterministic ops warn instead of
 * failing), else 0. */
int jd_deterministic_warn_only(void);

#ifdef __cplusplus
}
#endif

#endif
