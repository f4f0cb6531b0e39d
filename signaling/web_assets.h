/* The demo page and JavaScript client, compiled into the binary from
 * web/ (cmake/embed.cmake). */
#ifndef GH_SIGNALING_WEB_ASSETS_H
#define GH_SIGNALING_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;          /* "/", "/gatehouse.js" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
