/* profile.h: the C ABI of libtorch's operator profiler (its legacy CPU
 * profiler, the same in libtorch 1.13 and 2.x): which operators a region
 * of work ran, how often and for how long.
 *
 * The profiler is per thread: it records the operators of the thread that
 * started it (and autograd's CPU backward, which runs on the calling
 * thread), so start and stop run on one OS thread. Errors as jmedseg.h's. */
#ifndef JMEDSEG_PROFILE_H
#define JMEDSEG_PROFILE_H

#include "jmedseg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* jq_profile_start turns the profiler on for the calling thread (an error
 * if it is already on there). */
jt_error *jq_profile_start(void);

/* jq_profile_stop turns it off and hands back, malloc'd (free with
 * jq_free): *summary, one line per operator name, "name\tcalls\ttotal_us\t
 * self_us\n" (total: from its start to its end; self: less the operators
 * it called), in no particular order; and, when want_trace, *trace, the
 * Chrome trace (chrome://tracing, Perfetto) of every event. */
jt_error *jq_profile_stop(int want_trace, char **summary, char **trace);

void jq_free(char *p);

#ifdef __cplusplus
}
#endif

#endif
