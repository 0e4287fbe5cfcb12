/* The project's HTTP client's results as the gateway core's fetch results:
 * one mapping for every front end that fetches a JWK Set with jwtkit_fetch
 * for a gateway core source (jwtkit gate, jwtkit serve's jwks_uri clients,
 * the nginx module).  Header only: neither library links the other. */
#ifndef JK_FETCH_GW_H
#define JK_FETCH_GW_H

#include "fetch.h"
#include "gatecore.h"

static inline gw_fetch_result jk_fetch_gw_result(jk_fetch_result r) {
  switch (r) {
    case JK_FETCH_OK:
      return GW_FETCH_OK;
    case JK_FETCH_TIMEOUT:
      return GW_FETCH_TIMEOUT;
    case JK_FETCH_TOO_LARGE:
      return GW_FETCH_TOO_LARGE;
    case JK_FETCH_TRUNCATED:
      return GW_FETCH_TRUNCATED;
    case JK_FETCH_CONNECT:
      return GW_FETCH_CONNECT;
    case JK_FETCH_TLS:
      return GW_FETCH_TLS;
    default:
      return GW_FETCH_NETWORK;
  }
}

#endif
