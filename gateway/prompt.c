/* Secrets typed at a prompt (see prompt.h). */
#include "gateway/prompt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	caught_signal = sig;
}

static const int prompt_signals[] = { SIGINT, SIGHUP, SIGQUIT, SIGTERM };
#define NSIGNALS (sizeof(prompt_signals) / sizeof(prompt_signals[0]))

/* Reads up to '\n' one byte at a time, so that nothing after the line is
 * consumed (the next secret on stdin) and no copy stays in a stdio
 * buffer. Strips the '\n' and a '\r' before it. Returns the length, or
 * -1 after a message. */
int prompt_read_line(int fd, char *buf, size_t cap, const char *what, const char *from)
{
	size_t n = 0;
	ssize_t r;
	char ch;

	for (;;) {
		r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR && caught_signal == 0)
			continue;
		if (r < 0) {
			if (caught_signal == 0)
				fprintf(stderr, "gatehouse: reading %s from %s: %s\n", what, from,
				    strerror(errno));
			return -1;
		}
		if (r == 0 || ch == '\n')
			break;
		if (ch == '\0') {
			fprintf(stderr, "gatehouse: %s from %s contains a NUL byte\n", what, from);
			return -1;
		}
		if (n + 1 >= cap) {
			fprintf(stderr, "gatehouse: %s from %s is longer than %zu bytes\n", what,
			    from, cap - 2);
			return -1;
		}
		buf[n++] = ch;
	}
	if (r == 0 && n == 0) {
		fprintf(stderr, "gatehouse: no %s on %s\n", what, from);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

/* Asks on the terminal, with echo off unless echo. Returns the length,
 * -1 after a message, or -2 when fd is not a terminal. */
int prompt_read_tty(int fd, const char *prompt, bool echo, char *buf, size_t cap,
    const char *what)
{
	struct sigaction sa, old_sa[NSIGNALS];
	struct termios old_t, t;
	ssize_t w;
	size_t i;
	int n, sig;

	if (tcgetattr(fd, &old_t) < 0)
		return -2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the read must return so the terminal is restored. */
	caught_signal = 0;
	for (i = 0; i < NSIGNALS; i++)
		sigaction(prompt_signals[i], &sa, &old_sa[i]);
	t = old_t;
	if (!echo) {
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
		t.c_lflag |= ECHONL; /* the Enter key still shows as a new line */
	}
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0) {
		fprintf(stderr, "gatehouse: cannot set up the terminal: %s\n", strerror(errno));
		n = -1;
		goto out;
	}
	do
		w = write(fd, prompt, strlen(prompt));
	while (w < 0 && errno == EINTR && caught_signal == 0);
	n = prompt_read_line(fd, buf, cap, what, "the terminal");
	tcsetattr(fd, TCSAFLUSH, &old_t);
out:
	for (i = 0; i < NSIGNALS; i++)
		sigaction(prompt_signals[i], &old_sa[i], NULL);
	sig = caught_signal;
	if (sig != 0) {
		OPENSSL_cleanse(buf, cap);
		raise(sig);
		n = -1;
	}
	return n;
}

