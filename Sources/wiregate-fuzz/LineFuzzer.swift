import CMosquitto
import Foundation
import WiregateCore

/// A libFuzzer target over what a board's bytes go through: the line framer, then every
/// protocol's decoder with topic sanitising and classification (`EventBuilder`), and the
/// commands back (`commandLine`).
///
/// Besides "no crash", it checks two promises: the framer gives the same lines however the
/// bytes are split into reads, and every topic built from board data is a valid topic name,
/// by our rules and by libmosquitto's own validators (`mosquitto_validate_utf8`,
/// `mosquitto_pub_topic_check2`), which are what refuses a publish.
///
///   swift build -c release --product wiregate-fuzz --build-path .build/fuzz \
///     -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
///   .build/fuzz/release/wiregate-fuzz -max_total_time=60 Tests/fuzz-corpus
///
/// Built without `-DFUZZING` (as `swift build` does), it replays the files or directories
/// given as arguments through the same checks: the corpus as a regression run.
enum LineFuzzer {
    /// One board per protocol, and the option variants that change how lines are read.
    static let builders: [EventBuilder] = {
        let yaml = """
            gateway: { id: fuzz }
            mqtt: { host: 127.0.0.1 }
            boards:
              - { name: kv, match: { path: /dev/fuzz-kv }, protocol: kv, classes: { door: critical, "*": telemetry }, latest: [ "t*" ] }
              - { name: kv-semicolon, match: { path: /dev/fuzz-kv-semicolon }, protocol: kv, options: { pair_separator: ";", value_separator: ":" } }
              - { name: json, match: { path: /dev/fuzz-json }, protocol: json }
              - { name: json-template, match: { path: /dev/fuzz-json-template }, protocol: json, options: { topic: "{sensor}/{id}", value: v } }
              - { name: mysensors, match: { path: /dev/fuzz-mysensors }, protocol: mysensors }
              - { name: influx, match: { path: /dev/fuzz-influx }, protocol: influx }
              - { name: raw, match: { path: /dev/fuzz-raw }, protocol: raw }
            """
        do {
            let config = try GatewayConfig.parse(yaml: yaml, file: "fuzz.yaml")
            precondition(
                Set(config.boards.map(\.protocolName)) == Set(LineProtocols.all.map { $0.protocolName }),
                "the fuzzer must cover every protocol in LineProtocols.all")
            return config.boards.map { EventBuilder(board: $0, config: config) }
        } catch {
            fatalError("the fuzzer's config: \(error)")
        }
    }()
    static let receivedAt = Date(timeIntervalSince1970: 1_800_000_000)
    /// An allow-list with a pattern, as boards with a settable value have.
    static let commands = CommandPolicy(["SIREN=ON", "SIREN=OFF", "LED=*", "1;1;1;0;2;*"])

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var framer = LineFramer(maxLineLength: 256)
        var outputs: [LineFramer.Output] = []
        framer.feed(bytes) { outputs.append($0) }
        if bytes.count > 1 {
            // The same bytes in two reads, cut where the first byte says: the same lines.
            let cut = Int(bytes[0]) % bytes.count
            var split = LineFramer(maxLineLength: 256)
            var again: [LineFramer.Output] = []
            split.feed(bytes[..<cut]) { again.append($0) }
            split.feed(bytes[cut...]) { again.append($0) }
            precondition(
                again == outputs, "the framer's lines depend on how the bytes were split: \(outputs) vs \(again)")
        }
        for case .line(let line) in outputs {
            for builder in builders {
                if case .events(let events) = builder.outcome(for: line, receivedAt: receivedAt) {
                    for event in events {
                        if let problem = Topic.problem(inConfiguredTopic: event.topic) {
                            preconditionFailure(
                                "board data made the topic '\(event.topic)', which \(problem) (line: \(line.debugDescription))"
                            )
                        }
                        var topic = event.topic
                        let (utf8, check) = topic.withUTF8 { bytes in
                            bytes.withMemoryRebound(to: CChar.self) { chars in
                                (
                                    mosquitto_validate_utf8(chars.baseAddress, Int32(chars.count)),
                                    mosquitto_pub_topic_check2(chars.baseAddress, chars.count)
                                )
                            }
                        }
                        precondition(
                            utf8 == MOSQ_ERR_SUCCESS.rawValue && check == MOSQ_ERR_SUCCESS.rawValue,
                            "libmosquitto refuses the topic \(event.topic.debugDescription) (line: \(line.debugDescription))"
                        )
                        precondition(
                            event.subtopic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
                                .count
                                <= Topic.maxDepth, "a topic deeper than the cap: \(event.topic)")
                        // Bytes, not Characters: "/" and a combining mark after it are one Character.
                        let prefix = "wiregate/fuzz/\(builder.board.name)/".utf8
                        precondition(event.topic.utf8.starts(with: prefix), "topic escaped its board: \(event.topic)")
                        precondition(
                            event.topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).count
                                == 3
                                + event.subtopic.utf8.split(
                                    separator: UInt8(ascii: "/"), omittingEmptySubsequences: false
                                ).count,
                            "the subtopic's levels are not the topic's: \(event.topic)")
                        if let first = event.subtopic.unicodeScalars.first {
                            precondition(first != "$", "a level made from board data starts with '$': \(event.topic)")
                        }
                    }
                }
            }
        }
        // The same bytes as a command arriving from MQTT: on `set`, and as a protocol's own command
        // topic. Whatever the allow-list lets through is written as exactly one line.
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let levels = text.split(separator: "/", omittingEmptySubsequences: false)
        let lines = [text] + builders.compactMap { $0.board.decoder.commandLine(levels: levels, payload: text) }
        for line in lines where commands.allows(line) {
            precondition(
                !line.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 },
                "the allow-list let a command through that is not one line: \(line.debugDescription)")
        }
    }
}

/// The entry point. SwiftPM names an executable's entry point itself, so libFuzzer's own
/// `main` cannot be used; with `-DFUZZING` this one hands over to libFuzzer's driver instead.
@main
struct FuzzMain {
    static func main() throws {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(
                LLVMFuzzerRunDriver(&argc, &argv) { data, size in
                    LineFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
                    return 0
                })
        #else
            try replay(CommandLine.arguments.dropFirst())
        #endif
    }

    /// Runs every file given, or every file in each directory given, through the fuzzer's checks.
    static func replay(_ arguments: ArraySlice<String>) throws {
        var files: [URL] = []
        for argument in arguments {
            let url = URL(fileURLWithPath: argument)
            if (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                let names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
                files += names.map { url.appendingPathComponent($0) }
            } else {
                files.append(url)
            }
        }
        guard !files.isEmpty else {
            FileHandle.standardError.write(Data("usage: wiregate-fuzz <corpus directory or file>...\n".utf8))
            exit(64)
        }
        for file in files {
            try Data(contentsOf: file).withUnsafeBytes { LineFuzzer.run($0) }
        }
        print("replayed \(files.count) input(s): no crash, every check held")
    }
}

#if FUZZING
    /// libFuzzer's driver (compiler-rt's FuzzerDriver.cpp), linked in by `-sanitize=fuzzer`.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32
#endif
