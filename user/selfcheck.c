// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "selfcheck.h"

/* The child: only async-signal-safe calls, as the parent may have other threads. */
static void __attribute__((noreturn))
probe_child(int go_fd, const struct sockaddr_in *addr, const char *marker)
{
	char go;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)))
		_exit(1);
	/*
	 * Released once the parent traces this process: EOF without a byte means give up.  The
	 * wait is a poll, which the programs do not hook: a read blocked while the process became
	 * traced would end as a syscall exit without its entry, a counted drop of our own making.
	 */
	struct pollfd pfd = { .fd = go_fd, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	if (read(go_fd, &go, 1) != 1)
		_exit(1);
	if (write(fd, marker, SELFCHECK_MARKER_LEN) != SELFCHECK_MARKER_LEN)
		_exit(1);
	/* Closed explicitly, so the kernel side forgets the connection at once. */
	close(fd);
	_exit(0);
}

static void make_marker(char *out)
{
	static const char hex[] = "0123456789abcdef";
	static const char prefix[] = "wsaudit-selfcheck-";
	unsigned char rnd[(SELFCHECK_MARKER_LEN - sizeof(prefix) + 1) / 2];
	size_t n = sizeof(prefix) - 1;

	memcpy(out, prefix, n);
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		/* Unique enough without randomness: the marker only has to be told apart. */
		snprintf((char *)rnd, sizeof(rnd), "%d", getpid());
	}
	for (size_t i = 0; n < SELFCHECK_MARKER_LEN; i++) {
		out[n++] = hex[rnd[i / 2] >> (i % 2 ? 0 : 4) & 0xf];
	}
}

int selfcheck_probe_start(struct selfcheck_probe *p)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	int pipefd[2], err;
	pid_t pid;

	memset(p, 0, sizeof(*p));
	p->listen_fd = -1;
	p->go_fd = -1;
	make_marker(p->marker);
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->listen_fd < 0)
		return -errno;
	if (bind(p->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(p->listen_fd, 1) ||
	    getsockname(p->listen_fd, (struct sockaddr *)&addr, &alen)) {
		err = -errno;
		goto err_close;
	}
	if (pipe2(pipefd, O_CLOEXEC)) {
		err = -errno;
		goto err_close;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		goto err_close;
	}
	if (pid == 0) {
		close(pipefd[1]);
		probe_child(pipefd[0], &addr, p->marker);
	}
	close(pipefd[0]);
	p->go_fd = pipefd[1];
	p->pid = pid;
	return 0;

err_close:
	close(p->listen_fd);
	p->listen_fd = -1;
	return err;
}

int selfcheck_probe_go(struct selfcheck_probe *p)
{
	char go = 'g';

	if (write(p->go_fd, &go, 1) != 1)
		return -errno;
	return 0;
}

void selfcheck_probe_end(struct selfcheck_probe *p)
{
	if (p->go_fd >= 0)
		close(p->go_fd);
	if (p->pid > 0) {
		/* A child that already exited has not been reaped: the pid is still ours. */
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	p->pid = 0;
	p->go_fd = -1;
	p->listen_fd = -1;
}

bool selfcheck_marker_in(const struct selfcheck_probe *p, const void *buf, size_t len)
{
	return p->pid > 0 && memmem(buf, len, p->marker, SELFCHECK_MARKER_LEN) != NULL;
}
