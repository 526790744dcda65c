/*
 * The CD-ROM device's security descriptor (the guide's "ACLs and the device stack"): a list of
 * access control entries in the registry value Security, checked at IRP_MJ_CREATE for read and
 * write access and at each privileged request (raw read, SCSI pass-through, the exclusive lock)
 * against the principal in the FILE_OBJECT ("uid:N" for local and socket callers, the iSCSI
 * initiator name for the iSCSI target). Text form, entries separated by ';':
 *
 *     allow uid:0 rwp; allow iqn.2024-01.org.example:* r; deny *
 *
 * Each entry is `allow` or `deny`, a principal pattern (exact, `prefix*`, or `*`) and, for
 * allow, the rights: r (open for reading), w (open for writing: load and eject), p (privileged
 * requests). The first entry whose pattern matches decides; no match grants nothing. An empty or
 * absent descriptor grants everything to everyone (the default, as a device without a security
 * descriptor of its own inherits an open one).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "drivers/class/cdrom/cdromp.h"

struct ace {
    BOOLEAN allow;
    char pattern[IO_CALLER_PRINCIPAL_MAX];
    ULONG rights;
};

/* Parses the entry starting at *p (up to ';' or the end); FALSE with a reason when malformed. */
static BOOLEAN CdRompNextAce(PCSTR *p, struct ace *a, char *why, ULONG whylen)
{
    PCSTR s = *p, end = strchr(s, ';');
    char word[3][IO_CALLER_PRINCIPAL_MAX];
    int n = 0;
    if (!end)
        end = s + strlen(s);
    *p = *end ? end + 1 : end;
    while (s < end) {
        while (s < end && isspace((unsigned char)*s))
            s++;
        if (s >= end)
            break;
        PCSTR w = s;
        while (s < end && !isspace((unsigned char)*s))
            s++;
        if (n >= 3 || (size_t)(s - w) >= sizeof(word[0])) {
            snprintf(why, whylen, "an entry has too many or too long words");
            return FALSE;
        }
        memcpy(word[n], w, (size_t)(s - w));
        word[n++][s - w] = '\0';
    }
    memset(a, 0, sizeof(*a));
    if (n == 0) {
        a->pattern[0] = '\0'; /* an empty entry ("a; ; b" or a trailing ';') */
        return TRUE;
    }
    if (!strcasecmp(word[0], "allow"))
        a->allow = TRUE;
    else if (strcasecmp(word[0], "deny") != 0) {
        snprintf(why, whylen, "'%s': an entry starts with allow or deny", word[0]);
        return FALSE;
    }
    if (n < 2) {
        snprintf(why, whylen, "'%s' needs a principal", word[0]);
        return FALSE;
    }
    snprintf(a->pattern, sizeof(a->pattern), "%s", word[1]);
    if (a->allow) {
        if (n != 3) {
            snprintf(why, whylen, "allow %s needs rights (r, w, p)", word[1]);
            return FALSE;
        }
        for (PCSTR r = word[2]; *r; r++) {
            if (*r == 'r')
                a->rights |= CDROM_RIGHT_READ;
            else if (*r == 'w')
                a->rights |= CDROM_RIGHT_WRITE;
            else if (*r == 'p')
                a->rights |= CDROM_RIGHT_PRIVILEGED;
            else {
                snprintf(why, whylen, "'%c' is not a right (r, w, p)", *r);
                return FALSE;
            }
        }
    } else if (n != 2) {
        snprintf(why, whylen, "deny %s takes no rights", word[1]);
        return FALSE;
    }
    return TRUE;
}

static BOOLEAN CdRompMatch(PCSTR pattern, PCSTR principal)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, principal, n - 1) == 0;
    return strcmp(pattern, principal) == 0;
}

BOOLEAN CdRompDescriptorValid(PCSTR Descriptor, char *Why, ULONG WhyLength)
{
    struct ace a;
    PCSTR p = Descriptor;
    while (*p) {
        if (!CdRompNextAce(&p, &a, Why, WhyLength))
            return FALSE;
    }
    return TRUE;
}

ULONG CdRompRightsFor(PCSTR Descriptor, PCSTR Principal)
{
    const ULONG all = CDROM_RIGHT_READ | CDROM_RIGHT_WRITE | CDROM_RIGHT_PRIVILEGED;
    struct ace a;
    char why[64];
    PCSTR p = Descriptor;
    if (!Descriptor[0])
        return all;
    while (*p) {
        if (!CdRompNextAce(&p, &a, why, sizeof(why)))
            return 0; /* checked at start; a bad descriptor grants nothing */
        if (a.pattern[0] && CdRompMatch(a.pattern, Principal ? Principal : ""))
            return a.allow ? a.rights : 0;
    }
    return 0;
}
