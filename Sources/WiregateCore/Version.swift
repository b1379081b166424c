/// wiregate's version: `wiregate --version`, the Debian package's (deploy/package-deb.sh reads
/// `wiregate --version`), `wiregate_build_info` and the health report's.
public enum WiregateVersion {
    /// The version of this build.
    public static let current = "0.8.0"
}
