/*
 * health.c: --health, a client of the daemon's own /readyz (health.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "health.h"
#include "util.h"

/* Enough for /readyz's one-line reason; the rest is dropped. */
#define HEALTH_MAX_BODY		1024
#define HEALTH_TIMEOUT_MS	5000L

/* libcurl's write callback: keep the first HEALTH_MAX_BODY bytes. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;
	size_t		 len = size * n;

	if (b->len < HEALTH_MAX_BODY)
		buf_add(b, data, len < HEALTH_MAX_BODY - b->len ? len :
		    HEALTH_MAX_BODY - b->len);
	return len;
}

/* The URL of /readyz; a wildcard address is asked on loopback. */
static char *
readyz_url(const struct cfg *cfg)
{
	const char	*host = cfg->listen_host;

	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	return strchr(host, ':') != NULL ?
	    xasprintf("http://[%s]:%d/readyz", host, cfg->listen_port) :
	    xasprintf("http://%s:%d/readyz", host, cfg->listen_port);
}

int
health_check(const struct cfg *cfg)
{
	struct buf	 body;
	CURL		*e;
	CURLcode	 rc;
	char		*url, errbuf[CURL_ERROR_SIZE] = "";
	long		 status = 0;
	int		 healthy = 0;

	if (cfg->listen == NULL || cfg->listen_port == 0) {
		fprintf(stderr, "programs-cached: --health asks the daemon's "
		    "listener, and %s sets no [daemon] listen = host:port\n",
		    cfg->path);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (e = curl_easy_init()) == NULL) {
		fprintf(stderr, "programs-cached: libcurl failed to start\n");
		return 1;
	}
	url = readyz_url(cfg);
	buf_init(&body);
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* The daemon is local: no proxy from the environment, no redirect. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, HEALTH_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
	rc = curl_easy_perform(e);
	/* One line: the answer's own newline (or a cut one) goes. */
	while (body.len > 0 && (body.data[body.len - 1] == '\n' ||
	    body.data[body.len - 1] == '\r'))
		body.len--;
	buf_adds(&body, "");	/* NUL-terminated, never NULL */
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK)
		fprintf(stderr, "programs-cached: no answer from %s: %s\n", url,
		    *errbuf != '\0' ? errbuf : curl_easy_strerror(rc));
	else if (status == 200) {
		printf("%s\n", (const char *)body.data);
		healthy = 1;
	} else if (status == 503)
		fprintf(stderr, "programs-cached: not ready: %s\n",
		    (const char *)body.data);
	else
		fprintf(stderr, "programs-cached: HTTP %ld from %s\n", status,
		    url);
	buf_free(&body);
	free(url);
	curl_easy_cleanup(e);
	curl_global_cleanup();
	return healthy ? 0 : 1;
}
