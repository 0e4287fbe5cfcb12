/* Clocks: wall time in seconds and milliseconds, and a monotonic clock for
 * intervals, timeouts and rate limits (never affected by clock steps). */
#ifndef JK_CLOCK_H
#define JK_CLOCK_H

#include <stdint.h>

int64_t jk_now(void);     /* Unix seconds */
int64_t jk_now_ms(void);  /* Unix milliseconds */
int64_t jk_mono_ms(void); /* monotonic milliseconds */
int64_t jk_mono_us(void); /* monotonic microseconds */

#endif
