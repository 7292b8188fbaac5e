/*  tu_free_port / tu_free_addr: a free loopback TCP port for tests that
    bind servers or peer transports.  Header-only.  */
#ifndef TITAN_TESTS_TEST_FREE_ADDR_H_INCLUDED
#define TITAN_TESTS_TEST_FREE_ADDR_H_INCLUDED

#include <arpa/inet.h>
#include <check.h>
#include <czmq.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/*  Returns a loopback TCP port that was free a moment ago.  */
static inline int
tu_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge (fd, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ck_assert_int_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq (getsockname (fd, (struct sockaddr *) &sa, &len), 0);
    close (fd);
    return ntohs (sa.sin_port);
}

/*  Returns "127.0.0.1:<port>" of such a port (the caller's, freed with
    zstr_free).  */
static inline char *
tu_free_addr (void)
{
    return zsys_sprintf ("127.0.0.1:%d", tu_free_port ());
}

#endif
