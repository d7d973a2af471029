#ifndef GREET_H
#define GREET_H

/* greet returns a greeting for name in a static buffer. */
const char *greet(const char *name);

#endif
