import WiregateCore

/// The first mistake `GatewayConfig.parse` reports for `yaml` (as `test.yaml`), as a user reads
/// it; nil when the config is valid.
func configError(_ yaml: String) -> String? {
    do {
        _ = try GatewayConfig.parse(yaml: yaml, file: "test.yaml")
        return nil
    } catch {
        return error.description
    }
}
