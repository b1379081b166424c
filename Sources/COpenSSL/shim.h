// OpenSSL (Debian: libssl-dev), the same libssl that libmosquitto uses: the gateway builds
// the broker connection's SSL_CTX itself (see Sources/Wiregate/MQTT/BrokerTLS.swift).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

// Macros in OpenSSL's headers, which Swift cannot call.
static inline int wiregate_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int wiregate_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
