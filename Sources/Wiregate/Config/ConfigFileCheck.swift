import Foundation
import Glibc
import WiregateCore

/// The files a config names (secrets, certificates) and its state directory, checked all at once
/// for the user the daemon runs as: each mistake placed at the key that names the file, with what
/// is wrong and the command that fixes it.
public enum ConfigFileCheck {
    /// The group of the packaged unit's user, whose members read the secrets (0640 root:wiregate).
    public static let serviceGroup = "wiregate"

    /// Every problem found.
    /// - Parameters:
    ///   - references: the files a config names (`GatewayConfig.files`, or `ParseResult.files`
    ///     of a config with mistakes elsewhere).
    ///   - file: the config file's name, for the errors.
    ///   - access: whose access is checked (the current process's by default).
    /// - Returns: the problems in the order of the keys in the file; empty when every file is usable.
    public static func problems(
        _ references: [GatewayConfig.FileReference], file: String, access: FileAccess = FileAccess()
    ) -> [ConfigError] {
        let user = access.user
        // Root checking a config checks it for the service: the files go to the service's group.
        let group =
            user.uid == 0
            ? serviceGroup : getgrgid(user.gid).map { String(cString: $0.pointee.gr_name) } ?? "\(user.gid)"
        return references.compactMap { reference in
            let path = reference.path
            switch reference.role {
            case .directory:
                if let problem = access.directoryWriteProblem(path) {
                    let fix =
                        problem.contains("read-only file system")
                        ? "the journal would be kept in memory only; remount it read-write or choose another state_dir"
                        : "create it for the daemon's user: install -d -o \(user.name) -g \(group) -m 0750 \(path)"
                    return reference.error(file: file, "\(problem): \(fix)")
                }
                // A journal made by a run as root: the service could open none of it, and would journal in memory.
                let owned = stateFiles.compactMap {
                    access.fileWriteProblem((path as NSString).appendingPathComponent($0))
                }
                guard let problem = owned.first else { return nil }
                return reference.error(
                    file: file,
                    "\(problem)\(owned.count > 1 ? " (and \(owned.count - 1) more)" : ""): "
                        + "give the journal back to the daemon's user: chown -R \(user.name):\(group) \(path)")
            case .secret, .certificate:
                if let problem = access.readProblem(path) {
                    return reference.error(
                        file: file, "\(problem): \(fix(for: reference, problem: problem, group: group))")
                }
                // Read through links, as the daemon does; a secret of newlines only is empty to it too.
                if reference.role == .secret, let text = try? String(contentsOfFile: path, encoding: .utf8),
                    text.trimmingCharacters(in: .newlines).isEmpty
                {
                    return reference.error(
                        file: file, "'\(path)' is empty: \(fix(for: reference, problem: "empty", group: group))")
                }
                return nil
            }
        }
    }

    /// The files of the state directory the daemon opens for writing in place (the others it
    /// replaces by rename, which the directory's own permission allows).
    static let stateFiles = ["journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "sequence.tmp"]

    /// Paths the packaged unit cannot use although a check outside it finds them fine: it hides
    /// `/home`, `/root` and `/run/user` (`ProtectHome`) and has its own `/tmp` (`PrivateTmp`), and may
    /// write only `/var/lib/wiregate` (`ProtectSystem=strict`, `StateDirectory=wiregate`).
    /// - Returns: one warning per such path.
    public static func sandboxWarnings(_ references: [GatewayConfig.FileReference], file: String) -> [ConfigError] {
        let hidden = ["/home/", "/root/", "/run/user/", "/tmp/", "/var/tmp/"]
        return references.compactMap { reference in
            let path = (reference.path as NSString).standardizingPath
            if reference.role == .directory {
                let allowed = GatewayConfig.defaultStateDirectory
                guard path != allowed, !path.hasPrefix(allowed + "/") else { return nil }
                return reference.error(
                    file: file,
                    "the packaged unit may write only \(GatewayConfig.defaultStateDirectory) "
                        + "(ProtectSystem=strict): elsewhere its journal would go to memory; add ReadWritePaths= in a drop-in"
                )
            }
            guard let prefix = hidden.first(where: { path.hasPrefix($0) }) else { return nil }
            return reference.error(
                file: file,
                "the packaged unit cannot see \(prefix) (ProtectHome, PrivateTmp): keep the file in /etc/wiregate")
        }
    }

    /// What to do about a file that is missing, empty or unreadable.
    static func fix(for reference: GatewayConfig.FileReference, problem: String, group: String) -> String {
        let path = reference.path
        let variable = [
            "mqtt.password_file": GatewayConfig.passwordEnvironmentVariable,
            "backend.token_file": GatewayConfig.tokenEnvironmentVariable
        ][reference.key]
        let orVariable = variable.map { ", or remove this key and set \($0) in the daemon's environment" } ?? ""
        if problem.contains("cannot enter") {
            // Not "chmod o+x" on someone's home: the file belongs with the config.
            return
                "keep it in /etc/wiregate: install -m 0640 -g \(group) \(path) /etc/wiregate/ and point \(reference.key) there"
        }
        if problem.contains("cannot read") {
            return "give it to the daemon's group: chgrp \(group) \(path) && chmod 0640 \(path)"
        }
        switch reference.role {
        case .secret:
            return "write it (alone on one line) with: install -m 0640 -g \(group) /dev/stdin \(path)\(orVariable)"
        case .certificate:
            return
                "copy the certificate there (deploy/mosquitto/make-certs.sh makes a house CA and certificates), or remove this key"
        case .directory:
            return ""
        }
    }
}
