/* Reading secrets (passwords, TOTP codes) for the command line tools:
 * one line at a time from stdin, or from the terminal with echo off,
 * restoring the terminal when interrupted. */
#ifndef GH_GATEWAY_PROMPT_H
#define GH_GATEWAY_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

/* Reads up to '\n' one byte at a time (nothing after the line is
 * consumed). what ("the password") and from ("stdin") name it in error
 * messages. Returns the length, or -1 after a message. */
int prompt_read_line(int fd, char *buf, size_t cap, const char *what, const char *from);

/* Writes prompt and reads a line on the terminal fd, with echo off unless
 * echo. Returns the length, -1 after a message, or -2 when fd is not a
 * terminal. A signal during the prompt restores the terminal, wipes buf
 * and is raised again. */
int prompt_read_tty(int fd, const char *prompt, bool echo, char *buf, size_t cap,
    const char *what);

#endif
