import Foundation
import Glibc

/// Whether a user can read a file or write into a directory, and if not, why, in words an operator
/// can act on: which path, its owner and mode, and the command that fixes it.
///
/// For the process itself the kernel answers (`faccessat` with the effective ids); for another
/// user (`check-config` run as root for the service's `wiregate`) the answer is worked out from
/// the mode bits of the path and of every directory above it, as the kernel would without ACLs.
public struct FileAccess: Sendable {
    /// The user whose access is checked.
    public struct User: Sendable, Equatable {
        /// The login name the problems call the user by (`uid N` for an id without one).
        public var name: String
        /// The user id matched against a path's owner; 0 is root, whom read and write bits do not stop.
        public var uid: uid_t
        /// The primary group id, matched against a path's group as `groups` are.
        public var gid: gid_t
        /// Every group the user is in, its primary group included.
        public var groups: [gid_t]

        /// A user given by its ids, as `current` and `named(_:)` read them (or a test makes them).
        /// - Parameters:
        ///   - name: the login name.
        ///   - uid: the user id.
        ///   - gid: the primary group id.
        ///   - groups: every group the user is in, its primary group included.
        public init(name: String, uid: uid_t, gid: gid_t, groups: [gid_t]) {
            self.name = name
            self.uid = uid
            self.gid = gid
            self.groups = groups
        }

        /// The user running this process (effective ids).
        public static var current: User {
            let uid = geteuid()
            let name = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(uid)"
            var groups = [gid_t](repeating: 0, count: Int(getgroups(0, nil)))
            groups = Array(groups.prefix(Int(getgroups(Int32(groups.count), &groups))))
            return User(name: name, uid: uid, gid: getegid(), groups: groups + [getegid()])
        }

        /// The user called `name`, with its groups; nil when there is none.
        public static func named(_ name: String) -> User? {
            guard let entry = getpwnam(name) else { return nil }
            let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
            var count: Int32 = 64
            var groups = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(name, gid, &groups, &count) < 0 {
                groups = [gid_t](repeating: 0, count: Int(count))
                _ = getgrouplist(name, gid, &groups, &count)
            }
            return User(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(count, 0)))))
        }
    }

    /// The user whose access every check is about.
    public let user: User
    /// Whether `user` is this process's: the kernel is asked instead of the mode bits.
    private let isSelf: Bool

    /// - Parameter user: whose access to check; nil: this process's, which the kernel answers for.
    public init(user: User? = nil) {
        self.user = user ?? .current
        self.isSelf = user == nil || user?.uid == geteuid()
    }

    /// Why `user` cannot read the file at `path`; nil when it can.
    public func readProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { return "'\(path)' does not exist" }
            if code == EACCES, let blocked = blockedDirectory(above: path) { return blocked }
            return "'\(path)': \(String(cString: strerror(code)))"
        }
        if info.st_mode & S_IFMT == S_IFDIR { return "'\(path)' is a directory, not a file" }
        if let blocked = blockedDirectory(above: path) { return blocked }
        // A symlink's target must be reachable too (the link's own directories were checked above).
        if let target = Self.resolved(path), target != path, let blocked = blockedDirectory(above: target) {
            return "'\(path)' links to '\(target)', and \(blocked)"
        }
        guard allows(info, bit: 4, path: path, mode: R_OK) else {
            return "user \(user.name) cannot read '\(path)' (\(Self.describe(info)))"
        }
        return nil
    }

    /// Why `user` cannot keep files in the directory `path` (create it, or write in it); nil when it can.
    public func directoryWriteProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            guard errno == ENOENT else { return "'\(path)': \(String(cString: strerror(errno)))" }
            // Created at start-up if its nearest existing parent lets the user.
            var parent = (path as NSString).deletingLastPathComponent
            while !parent.isEmpty, parent != "/", stat(parent, &info) != 0 {
                parent = (parent as NSString).deletingLastPathComponent
            }
            if parent.isEmpty { parent = "/" }
            guard stat(parent, &info) == 0 else { return "'\(path)' does not exist" }
            if let problem = writeProblem(directory: parent, info: info) {
                return "'\(path)' does not exist, and cannot be created: \(problem)"
            }
            return nil
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "'\(path)' is not a directory" }
        return writeProblem(directory: path, info: info)
    }

    /// Why `user` cannot write the existing file `path` (a journal left by a run as root); nil when
    /// it can, or when there is no such file.
    public func fileWriteProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard allows(info, bit: 2, path: path, mode: W_OK) else {
            return "user \(user.name) cannot write '\(path)' (\(Self.describe(info)))"
        }
        return nil
    }

    private func writeProblem(directory: String, info: stat) -> String? {
        if let blocked = blockedDirectory(above: directory + "/.") { return blocked }
        var fs = statvfs()
        if statvfs(directory, &fs) == 0, fs.f_flag & UInt(ST_RDONLY) != 0 {
            return "'\(directory)' is on a read-only file system"
        }
        guard
            allows(info, bit: 2, path: directory, mode: W_OK | X_OK)
                && allows(info, bit: 1, path: directory, mode: X_OK)
        else {
            return "user \(user.name) cannot write in '\(directory)' (\(Self.describe(info)))"
        }
        return nil
    }

    /// The first directory above `path` that `user` cannot enter (search permission), as a problem.
    private func blockedDirectory(above path: String) -> String? {
        var directory = (path as NSString).deletingLastPathComponent
        var chain: [String] = []
        while !directory.isEmpty {
            chain.append(directory)
            if directory == "/" { break }
            directory = (directory as NSString).deletingLastPathComponent
        }
        for directory in chain.reversed() {
            var info = stat()
            guard stat(directory, &info) == 0 else { continue }
            if !allows(info, bit: 1, path: directory, mode: X_OK) {
                return "user \(user.name) cannot enter '\(directory)' (\(Self.describe(info)))"
            }
        }
        return nil
    }

    /// Whether the mode bit (4 read, 2 write, 1 search) is granted to `user`.
    private func allows(_ info: stat, bit: mode_t, path: String, mode: Int32) -> Bool {
        if isSelf { return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0 }
        if user.uid == 0 { return bit != 1 || info.st_mode & 0o111 != 0 || info.st_mode & S_IFMT == S_IFDIR }
        if info.st_uid == user.uid { return info.st_mode & (bit << 6) != 0 }
        if user.groups.contains(info.st_gid) || info.st_gid == user.gid { return info.st_mode & (bit << 3) != 0 }
        return info.st_mode & bit != 0
    }

    /// The path with every symlink resolved; nil when it cannot be.
    public static func resolved(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// `owner root:wiregate, mode 0640`.
    static func describe(_ info: stat) -> String {
        let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "\(info.st_uid)"
        let group = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) } ?? "\(info.st_gid)"
        return "owner \(owner):\(group), mode \(String(format: "%04o", info.st_mode & 0o7777))"
    }
}
