/* Bounded byte cursors for everything that comes from the network.
 *
 * Every read of untrusted bytes goes through struct rd: a read either takes
 * the whole field or fails without moving, so a parser can chain reads with
 * || and compare lengths against what is left (never `p + n > end`). Writes
 * go through struct wr, which records an overflow instead of writing past
 * the buffer; callers check wr.overflow once at the end. */
#ifndef GH_COMMON_BYTES_H
#define GH_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rd {
	const uint8_t *p; /* borrowed: next unread byte */
	size_t left;      /* bytes left to read */
};

static inline struct rd rd_init(const uint8_t *p, size_t len)
{
	struct rd r = { p, len };
	return r;
}

/* Each returns 0 on success, -1 when fewer bytes are left than asked. */
static inline int rd_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return -1;
	*v = r->p[0];
	r->p += 1;
	r->left -= 1;
	return 0;
}

static inline int rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < 2)
		return -1;
	*v = (uint16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return 0;
}

static inline int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) |
	     ((uint32_t)r->p[2] << 8) | (uint32_t)r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

/* Borrows n bytes: *out points into the cursor's buffer. */
static inline int rd_bytes(struct rd *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		return -1;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

static inline int rd_copy(struct rd *r, void *dst, size_t n)
{
	if (n > r->left)
		return -1;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static inline int rd_skip(struct rd *r, size_t n)
{
	if (n > r->left)
		return -1;
	r->p += n;
	r->left -= n;
	return 0;
}

struct wr {
	uint8_t *p;   /* borrowed: start of the output buffer */
	size_t cap;
	size_t len;
	int overflow; /* set once a write did not fit; later writes do nothing */
};

static inline struct wr wr_init(uint8_t *p, size_t cap)
{
	struct wr w = { p, cap, 0, 0 };
	return w;
}

static inline int wr_fits(struct wr *w, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return 0;
	}
	return 1;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	if (wr_fits(w, 1))
		w->p[w->len++] = v;
}

static inline void wr_u16(struct wr *w, uint16_t v)
{
	if (!wr_fits(w, 2))
		return;
	w->p[w->len++] = (uint8_t)(v >> 8);
	w->p[w->len++] = (uint8_t)v;
}

static inline void wr_u32(struct wr *w, uint32_t v)
{
	if (!wr_fits(w, 4))
		return;
	w->p[w->len++] = (uint8_t)(v >> 24);
	w->p[w->len++] = (uint8_t)(v >> 16);
	w->p[w->len++] = (uint8_t)(v >> 8);
	w->p[w->len++] = (uint8_t)v;
}

static inline void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (n && wr_fits(w, n)) {
		memcpy(w->p + w->len, src, n);
		w->len += n;
	}
}

static inline void wr_zero(struct wr *w, size_t n)
{
	if (n && wr_fits(w, n)) {
		memset(w->p + w->len, 0, n);
		w->len += n;
	}
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

#endif
