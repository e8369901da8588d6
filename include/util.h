/*
 * util.h: memory, growable buffers, clocks.
 *
 * Allocation failure is fatal everywhere (as in tmux): a cache populator that
 * cannot allocate cannot do anything useful, and systemd restarts it.
 */
#ifndef PCD_UTIL_H
#define PCD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCD_ATTR_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define PCD_NORETURN		__attribute__((noreturn))
/* A result that must not be dropped (a failure would go unseen). */
#define PCD_WUR			__attribute__((warn_unused_result))
/* They exit on failure: what they return is never NULL. */
#define PCD_NONNULL_RET		__attribute__((returns_nonnull))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *) PCD_NONNULL_RET;
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) PCD_ATTR_PRINTF(1, 2) PCD_NONNULL_RET;
char	*xvasprintf(const char *, va_list) PCD_ATTR_PRINTF(1, 0)
	    PCD_NONNULL_RET;

/* A growable byte buffer. data is NUL-terminated past len when non-NULL. */
struct buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
};

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
/* Make room for at least extra more bytes. */
void	 buf_reserve(struct buf *, size_t extra);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_addc(struct buf *, unsigned char);
void	 buf_adds(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...) PCD_ATTR_PRINTF(2, 3);
/* Shrink to len bytes (len <= b->len). */
void	 buf_truncate(struct buf *, size_t len);
/* Give the contents to the caller (who frees them) and leave b empty. */
unsigned char	*buf_steal(struct buf *, size_t *len);

/* Milliseconds on the monotonic clock. */
uint64_t	 mono_ms(void);
/* Milliseconds since the epoch. */
uint64_t	 wall_ms(void);

/* Uniform random double in [0, 1), seeded once from the OS. */
double	 rand_unit(void);
/* The value of a hex digit (0-9, A-F, a-f), or -1. */
int	 hex_digit(unsigned char);

#endif
