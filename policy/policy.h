/* Who may call whom with which media: the admin's policy file (DESIGN.md,
 * "Policy file"), parsed once and then consulted without I/O.
 *
 * Pure: the caller reads the file and passes its text; decisions take the
 * two parties' names and groups and never touch a socket, a clock or a
 * log. Default deny: a medium is allowed only when an allow rule matches
 * it and no deny rule does; every decision names the rule that made it. */
#ifndef GH_POLICY_POLICY_H
#define GH_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* Media kinds, as a bit set. */
enum policy_media {
	POLICY_AUDIO = 1u << 0,
	POLICY_VIDEO = 1u << 1,
	POLICY_SCREEN = 1u << 2,
	POLICY_DATA = 1u << 3,
};
#define POLICY_MEDIA_ALL (POLICY_AUDIO | POLICY_VIDEO | POLICY_SCREEN | POLICY_DATA)

#define POLICY_NAME_MAX 64    /* user, group and rule names, with the NUL */

struct policy;

/* A party to a call: its user name and every group it belongs to from
 * outside the policy file (local user database, token claims). Groups
 * that the policy file itself lists the user in are added by the policy.
 * Borrowed for the duration of the call. */
struct policy_subject {
	const char *user;
	const char *const *groups;
	size_t ngroups;
};

struct policy_decision {
	bool allow;               /* every requested medium is allowed */
	unsigned media;           /* the requested media that are allowed */
	bool record;              /* an allow rule that matched asks for recording */
	char rule[POLICY_NAME_MAX]; /* the deciding rule's name, or "default" */
};

/* Parses and validates a policy file's text. On failure returns NULL and
 * writes one line into err naming the place: "3:17: <jansson message>"
 * for JSON syntax, or a path like "rules[2].media[1]: unknown media kind
 * \"vidoe\"", "rules[0].from: invalid group name \"s les\"", "rules[1]: missing
 * \"action\"", "groups.sales[0]: expected a user name". Unknown keys,
 * duplicate keys, duplicate rule names and a "default" other than "deny"
 * are errors. Returns owned: free with policy_free(). */
struct policy *policy_parse(const char *text, size_t len, char *err, size_t errlen);
void policy_free(struct policy *p);

/* Decides a call from `from` to `to` asking for `media` (a non-empty set
 * of enum policy_media). Deny wins over allow for each medium; the call
 * is allowed only when every requested medium is. out->rule names the
 * first deny rule that refused a requested medium, else (when denied for
 * want of an allow) "default", else the first allow rule that matched. */
void policy_decide(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to, unsigned media, struct policy_decision *out);

/* The media `from` may use toward `to` (possibly 0): what contacts lists. */
unsigned policy_allowed_media(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to);

/* The users the policy file names (in groups and user: rules), for
 * contacts lists: calls fn once per distinct name. */
void policy_each_user(const struct policy *p, void (*fn)(void *ctx, const char *user),
    void *ctx);

/* The groups that rules name but "groups" does not list, by name: only
 * the identity backend can put a user in them. Accepted (DESIGN.md's
 * example names such a group), but the tools warn, since a misspelt group
 * looks the same and would silently weaken a deny rule. */
void policy_each_undeclared(const struct policy *p, void (*fn)(void *ctx, const char *group),
    void *ctx);
/* What the tools say after `group "NAME"` for each of them. */
#define POLICY_UNDECLARED_TEXT "is named by rules but not listed in \"groups\": only " \
    "the identity backend (users.db groups, token claims) puts users in it"

/* The rules that ask for recording ("record": true), by name. */
void policy_each_recording_rule(const struct policy *p,
    void (*fn)(void *ctx, const char *rule), void *ctx);
/* What the tools say after `rule "NAME"` for each of them: the calls are
 * flagged, but nothing records them until media termination is built. */
#define POLICY_RECORD_TEXT "asks for recording, which this version of Gatehouse does " \
    "not do yet: the calls it allows are relayed, audited and flagged \"record\" to " \
    "both sides, but their media is not recorded"

/* Rules in order, for `gatehouse policy check`: writes a human-readable
 * listing into a FILE-like callback, one line per rule. */
void policy_describe(const struct policy *p, void (*line)(void *ctx, const char *text),
    void *ctx);

/* "audio" -> POLICY_AUDIO, ...; 0 for an unknown name. */
unsigned policy_media_parse(const char *name);
/* Names of the bits in media, in the order audio, video, screen, data,
 * written as a JSON-ready list into fn calls. */
const char *policy_media_name(unsigned one_bit);

#endif
