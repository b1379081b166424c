// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "wiregate",
    products: [
        .executable(name: "wiregate", targets: ["wiregate"]),
        .library(name: "Wiregate", targets: ["Wiregate"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // Already AsyncHTTPClient's; named here because BackendSink builds its TLS configuration.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The backend sink's HTTP client: NIO-based like the rest, TLS with a private CA, timeouts, pooling.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The code counts and measures through swift-metrics' types only; swift-prometheus is its
        // backend and writes the text exposition that /metrics serves (the exposition format's
        // escaping, label sets and histogram buckets are not ours to get wrong).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0")
    ],
    targets: [
        // libmosquitto (Debian: libmosquitto-dev). Only a module map and a header.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // adjtimex(2) from <sys/timex.h>, for the clock-synchronised flag of each event.
        .systemLibrary(name: "CTimex"),
        // glibc's posix_spawn_file_actions_addclosefrom_np: the test kit's children inherit nothing.
        .systemLibrary(name: "CSpawn"),
        // glibc's malloc.h: the journal gives memory back after a burst, the daemon limits arenas.
        .systemLibrary(name: "CMalloc"),
        // zlib (Debian: zlib1g-dev): gzip bodies for the backend, once it says it accepts them.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // OpenSSL (Debian: libssl-dev), already libmosquitto's: the broker's TLS context is built
        // here so that verification failures can be reported with their reason, and
        // mqtt.tls.server_name checked (libmosquitto only checks the address it connects to).
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // libudev (Debian: libudev-dev): enumerating ttys and watching hotplug events.
        .systemLibrary(
            name: "CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        // libxcrypt (Debian: libcrypt-dev): crypt_r checks the alarm's codes against their
        // yescrypt hashes, the same library and format as /etc/shadow; no hashing of our own.
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // Pure logic: config, framer, decoders, topics, backoff. No I/O, no processes.
        .target(
            name: "WiregateCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                // The cursors' outstanding events: a deque, appended at the end and drained from the front.
                .product(name: "DequeModule", package: "swift-collections")
            ]
        ),
        // The I/O parts of the data path: serial ports, MQTT, the outbox, the gateway wiring.
        .target(
            name: "Wiregate",
            dependencies: [
                "WiregateCore",
                "CCrypt",
                "CMalloc",
                "CMosquitto",
                "CTimex",
                "CUdev",
                "CZlib",
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The backend's request heads and TLS configuration (BackendSink).
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // The C API, for the one read GRDB cannot open (an immutable journal, see Journal.open).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus")
            ]
        ),
        // The `wiregate` binary: one ArgumentParser command per file.
        .executableTarget(
            name: "wiregate",
            dependencies: [
                "CMalloc",
                "Wiregate",
                "WiregateCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `simulate` removes its link on SIGTERM and SIGINT.
                .product(name: "UnixSignals", package: "swift-service-lifecycle")
            ]
        ),
        // Test helpers: a private mosquitto, a subscriber, pseudo-terminal boards.
        .target(
            name: "WiregateTestKit",
            dependencies: ["Wiregate", "WiregateCore", "CSpawn"]
        ),
        // Benchmarks: real mosquitto, real ptys, the release daemon; figures go in the README.
        // libFuzzer target over the framer and every decoder (see the file for how to build it).
        .executableTarget(
            name: "wiregate-fuzz",
            // libmosquitto: every topic is checked with the library's own validators, not only ours.
            dependencies: ["WiregateCore", "CMosquitto"]
        ),
        .executableTarget(
            name: "wiregate-bench",
            dependencies: [
                "Wiregate",
                "WiregateCore",
                "WiregateTestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ]
        ),
        // The seeded fault campaign (scripts/torture.sh): the daemon as a process, faults drawn from
        // a seed, the guarantees checked at a persistent subscriber and at the Django app.
        .executableTarget(
            name: "wiregate-torture",
            // libmosquitto: every topic seen is checked with the library's own validators.
            dependencies: [
                "Wiregate",
                "WiregateCore",
                "WiregateTestKit",
                "CMosquitto",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .testTarget(
            name: "WiregateCoreTests",
            dependencies: ["WiregateCore"]
        ),
        .testTarget(
            name: "WiregateTests",
            dependencies: [
                "Wiregate",
                "CMosquitto",
                "WiregateCore",
                "WiregateTestKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ]
        )
    ]
)
