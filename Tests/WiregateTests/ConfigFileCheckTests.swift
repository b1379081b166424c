import Foundation
import Glibc
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The files a config names, checked for the user the daemon runs as: real files, real modes, a
/// real read-only mount. The user is one no file here belongs to (uid 64999, in no group), so the
/// checks take the path a `wiregate` user's would, without creating one.
@Suite struct ConfigFileCheckTests {
    let directory: String
    let service = FileAccess.User(name: "svc", uid: 64999, gid: 64999, groups: [64999])

    init() throws {
        directory = try makeTemporaryDirectory("files")
        chmod(directory, 0o755)
    }

    func config(_ mqtt: String, stateDirectory: String? = nil) throws -> [GatewayConfig.FileReference] {
        try GatewayConfig.parse(
            yaml: """
                gateway: { id: h, state_dir: \(stateDirectory ?? directory + "/state") }
                mqtt: { \(mqtt) }
                boards: [ { name: a, match: { path: /dev/ttyACM0 }, protocol: raw } ]
                """, file: "c.yaml"
        ).files
    }

    func write(_ name: String, _ text: String, mode: mode_t) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
        return path
    }

    @Test func eachProblemNamesTheKeyTheFileAndTheFix() throws {
        let unreadable = try write("mqtt.pass", "s3cret\n", mode: 0o600)
        let empty = try write("empty.key", "", mode: 0o640)
        let files = try config(
            "password_file: \(unreadable), tls: { ca_file: \(directory)/nope.crt, cert_file: \(directory), key_file: \(empty) }"
        )
        // (The state directory, which svc cannot create here, is theStateDirectory...'s.)
        let problems = ConfigFileCheck.problems(files, file: "c.yaml", access: FileAccess(user: service)).filter {
            $0.path != "gateway.state_dir"
        }
        #expect(
            problems.map(\.path) == [
                "mqtt.password_file", "mqtt.tls.ca_file", "mqtt.tls.cert_file", "mqtt.tls.key_file"
            ], "\(problems)")
        #expect(problems.allSatisfy { $0.file == "c.yaml" && $0.line == 2 })
        let byKey = Dictionary(uniqueKeysWithValues: problems.map { ($0.path, $0.message) })
        let password = try #require(byKey["mqtt.password_file"])
        #expect(password.contains("user svc cannot read '\(unreadable)' (owner root:root, mode 0600)"), "\(password)")
        #expect(password.contains("chmod 0640"), "\(password)")
        #expect(try #require(byKey["mqtt.tls.ca_file"]).contains("does not exist"))
        #expect(try #require(byKey["mqtt.tls.cert_file"]).contains("is a directory"))
        let key = try #require(byKey["mqtt.tls.key_file"])
        #expect(key.contains("is empty") || key.contains("cannot read"), "\(key)")

        // Readable by the group the user is in: no problem left for that file.
        chown(unreadable, 0, 64999)
        chmod(unreadable, 0o640)
        #expect(
            !ConfigFileCheck.problems(files, file: "c.yaml", access: FileAccess(user: service)).map(\.path).contains(
                "mqtt.password_file"))
        // Root reads it whatever its mode; the environment-variable way out is offered for a missing password.
        unlink(unreadable)
        let missing = ConfigFileCheck.problems(files, file: "c.yaml").first { $0.path == "mqtt.password_file" }
        #expect(
            missing?.message.contains(GatewayConfig.passwordEnvironmentVariable) == true,
            "\(String(describing: missing))")
    }

    /// A file in a directory the user cannot enter is as unreadable as a file of mode 0600, and the
    /// fix names the directory.
    @Test func aDirectoryThatBarsTheWayIsNamed() throws {
        let closed = directory + "/closed"
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: false)
        chmod(closed, 0o700)
        try "x\n".write(toFile: closed + "/mqtt.pass", atomically: false, encoding: .utf8)
        chmod(closed + "/mqtt.pass", 0o644)
        let problems = ConfigFileCheck.problems(
            try config("password_file: \(closed)/mqtt.pass"), file: "c.yaml",
            access: FileAccess(user: service))
        let message = try #require(problems.first { $0.path == "mqtt.password_file" }?.message)
        #expect(
            message.contains("cannot enter '\(closed)'") && message.contains("keep it in /etc/wiregate"), "\(message)")

        // A link whose own directory is open, to a file behind the closed one: the target counts.
        let link = directory + "/linked.pass"
        symlink(closed + "/mqtt.pass", link)
        let linked = ConfigFileCheck.problems(
            try config("password_file: \(link)"), file: "c.yaml", access: FileAccess(user: service))
        let linkMessage = try #require(linked.first { $0.path == "mqtt.password_file" }?.message)
        #expect(
            linkMessage.contains("links to '\(closed)/mqtt.pass'") && linkMessage.contains("cannot enter '\(closed)'"),
            "\(linkMessage)")
    }

    /// A first `wiregate run` as root leaves a journal the service cannot open: named, with its fix.
    @Test func aJournalLeftByRootIsNamed() throws {
        let state = directory + "/state-root"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: false)
        chown(state, 64999, 64999)
        #expect(
            ConfigFileCheck.problems(
                try config("", stateDirectory: state), file: "c.yaml", access: FileAccess(user: service)
            ).isEmpty)
        // Files replaced by rename are no obstacle; a journal opened in place is.
        try "".write(toFile: state + "/status.json", atomically: false, encoding: .utf8)
        #expect(
            ConfigFileCheck.problems(
                try config("", stateDirectory: state), file: "c.yaml", access: FileAccess(user: service)
            ).isEmpty)
        try "".write(toFile: state + "/journal.sqlite", atomically: false, encoding: .utf8)
        chmod(state + "/journal.sqlite", 0o644)
        let problems = ConfigFileCheck.problems(
            try config("", stateDirectory: state), file: "c.yaml", access: FileAccess(user: service))
        let message = try #require(problems.first?.message)
        #expect(
            message.contains("cannot write '\(state)/journal.sqlite' (owner root:root, mode 0644)")
                && message.contains("chown -R svc:"),
            "\(message)")
    }

    /// Files the packaged unit's sandbox hides, and a state directory it may not write, are warned about.
    @Test func whatTheUnitsSandboxHidesIsWarnedAbout() throws {
        let files = try GatewayConfig.parse(
            yaml: """
                gateway: { id: h, state_dir: /srv/wiregate/ }
                mqtt: { password_file: /root/mqtt.pass, tls: { ca_file: /etc/wiregate/ca.crt, cert_file: /tmp/gw.crt, key_file: /home/pi/gw.key } }
                boards: [ { name: a, match: { path: /dev/ttyACM0 }, protocol: raw } ]
                """, file: "c.yaml"
        ).files
        let warnings = ConfigFileCheck.sandboxWarnings(files, file: "c.yaml")
        #expect(
            warnings.map(\.path) == [
                "gateway.state_dir", "mqtt.password_file", "mqtt.tls.cert_file", "mqtt.tls.key_file"
            ], "\(warnings)")
        #expect(warnings[0].message.contains("ProtectSystem=strict") && warnings[1].message.contains("ProtectHome"))
        // Below /var/lib/wiregate, or written with a trailing slash, is where the unit may write.
        for stateDirectory in ["/var/lib/wiregate/", "/var/lib/wiregate/house"] {
            let inside = try config("", stateDirectory: stateDirectory)
            #expect(ConfigFileCheck.sandboxWarnings(inside, file: "c.yaml").isEmpty, "\(stateDirectory)")
        }
    }

    @Test func theStateDirectoryMustBeWritableOrCreatable() throws {
        // Creatable where the user may write: fine.
        let open = directory + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false)
        chown(open, 64999, 64999)
        #expect(
            ConfigFileCheck.problems(
                try config("", stateDirectory: open + "/state"), file: "c.yaml", access: FileAccess(user: service)
            ).isEmpty)
        // Not creatable in a root-owned 0755 directory: the problem says so and how to make it.
        let problems = ConfigFileCheck.problems(try config(""), file: "c.yaml", access: FileAccess(user: service))
        let message = try #require(problems.first { $0.path == "gateway.state_dir" }?.message)
        #expect(
            message.contains("does not exist, and cannot be created: user svc cannot write in '\(directory)'"),
            "\(message)")
        #expect(message.contains("install -d -o svc"), "\(message)")
        // Not a directory.
        let file = try write("state-file", "", mode: 0o644)
        let notDirectory = ConfigFileCheck.problems(try config("", stateDirectory: file), file: "c.yaml")
        #expect(notDirectory.first?.message.contains("is not a directory") == true, "\(notDirectory)")
    }

    /// Root may write anywhere but on a read-only file system: a card mounted read-only is named as such.
    @Test func aReadOnlyMountIsNamed() throws {
        let mountPoint = directory + "/ro"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        guard
            try ChildProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", mountPoint]).status == 0
        else {
            Issue.record("cannot mount a tmpfs (the tests run as root)")
            return
        }
        defer { _ = try? ChildProcess.run("/usr/bin/umount", [mountPoint]) }
        let problems = ConfigFileCheck.problems(try config("", stateDirectory: mountPoint), file: "c.yaml")
        #expect(
            problems.first?.message.contains("'\(mountPoint)' is on a read-only file system") == true, "\(problems)")
        #expect(problems.first?.message.contains("in memory") == true, "\(problems)")
    }
}
