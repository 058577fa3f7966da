// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "linkreap.h"
#include "log.h"

struct linkreap {
	pthread_t thread;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t more;
	struct bpf_link **links;
	unsigned int n, cap;
	bool stop;
};

static void *reap(void *arg)
{
	struct linkreap *r = arg;
	struct bpf_link *link;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->n && !r->stop)
			pthread_cond_wait(&r->more, &r->lock);
		if (!r->n)
			break;
		link = r->links[--r->n];
		pthread_mutex_unlock(&r->lock);
		bpf_link__destroy(link);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct linkreap *linkreap_new(void)
{
	struct linkreap *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->more, NULL);
	err = pthread_create(&r->thread, NULL, reap, r);
	if (err) {
		pthread_cond_destroy(&r->more);
		pthread_mutex_destroy(&r->lock);
		free(r);
		errno = err;
		return NULL;
	}
	return r;
}

void linkreap_put(struct linkreap *r, struct bpf_link *link)
{
	struct bpf_link **grown;
	unsigned int ncap;

	if (!link)
		return;
	if (!r)
		goto inline_destroy;
	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		ncap = r->cap ? 2 * r->cap : 64;
		grown = realloc(r->links, ncap * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&r->lock);
			goto inline_destroy;
		}
		r->links = grown;
		r->cap = ncap;
	}
	r->links[r->n++] = link;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->lock);
	return;

inline_destroy:
	bpf_link__destroy(link);
}

void linkreap_free(struct linkreap *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->lock);
	/* The thread drains the queue before it ends. */
	pthread_join(r->thread, NULL);
	free(r->links);
	pthread_cond_destroy(&r->more);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
