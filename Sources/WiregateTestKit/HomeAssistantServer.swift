import Foundation
import Glibc
import Synchronization

/// A real Home Assistant (2024.3.3, from `scripts/homeassistant-venv.sh`) on a free loopback
/// port, its MQTT integration pointed at a private broker by a config entry written before it
/// starts (`scripts/homeassistant/prepare.py`), and a long-lived token for its REST API.
/// Stopped (by its pid) when released; `restart()` stops and starts it on the same config.
public final class HomeAssistantServer: Sendable {
    /// The virtual environment the venv script makes.
    public static let venv = HouseBroker.repositoryRoot.appendingPathComponent(".build/ha-venv").path

    /// Whether the venv is there (the README's test command makes it before the suite).
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: venv + "/bin/hass") }

    /// The port of its HTTP API (and frontend).
    public let port: Int
    /// The bearer token of the long-lived access token.
    public let token: String
    /// Its config directory (its log is `home-assistant.log` there).
    public let directory: String
    private let mqttPort: Int
    private let process = Mutex<ChildProcess?>(nil)
    /// On `homeassistant/status` from before each start: its birth is not retained, and comes
    /// seconds after the start.
    private let births = Mutex<Subscriber?>(nil)

    /// Writes its config for the broker on `mqttPort` and starts it; `waitUntilOnline()` waits for its MQTT.
    public init(mqttPort: Int) throws {
        self.mqttPort = mqttPort
        port = try freeLoopbackPort()
        directory = try makeTemporaryDirectory("homeassistant")
        let prepared = try ChildProcess.run(
            Self.venv + "/bin/python",
            [
                HouseBroker.repositoryRoot.appendingPathComponent("scripts/homeassistant/prepare.py").path, directory,
                "--mqtt-port", "\(mqttPort)", "--http-port", "\(port)"
            ])
        guard prepared.status == 0 else { throw TestKitError("prepare.py failed: \(prepared.output)") }
        token = prepared.output.trimmingCharacters(in: .whitespacesAndNewlines)
        try start()
    }

    deinit {
        process.withLock { $0?.terminate() }
        births.withLock { $0?.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts it (its log appended to `home-assistant.out`). (No `--pdeathsig`: it follows the
    /// spawning thread, and a pool thread may end mid-test.)
    public func start() throws {
        let subscriber = try Subscriber(port: mqttPort, filter: "homeassistant/status")
        births.withLock {
            $0?.stop(); $0 = subscriber
        }
        let log = open(directory + "/home-assistant.out", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        defer { close(log) }
        let child = try ChildProcess(
            Self.venv + "/bin/hass", ["-c", directory, "--skip-pip"], stdout: log, stderr: log)
        process.withLock { $0 = child }
    }

    /// Stops it (SIGTERM, as systemd would) and waits for it to end.
    public func stop() async {
        guard let child = process.withLock({ $0 }) else { return }
        child.terminate()
        _ = await eventually(timeout: .seconds(20)) { !child.isRunning }
        process.withLock { $0 = nil }
    }

    /// Waits until its MQTT integration has said `online` on `homeassistant/status` (its REST API
    /// answers seconds before its MQTT is ready; discovery before that is still seen, retained).
    /// - Returns: false when it did not within `timeout`, or fell into recovery mode.
    public func waitUntilOnline(timeout: Duration = .seconds(90)) async throws -> Bool {
        guard let birth = births.withLock({ $0 }) else { return false }
        return await birth.waitAsync(timeout: timeout) { $0.contains { $0.payload == "online" } } && !inRecoveryMode
    }

    /// Whether its log says it ignored its config (a failed import or a YAML error).
    public var inRecoveryMode: Bool {
        (try? String(contentsOfFile: directory + "/home-assistant.log", encoding: .utf8))?.contains(
            "Activating recovery mode") ?? false
    }

    /// One entity's state, as the REST API gives it.
    public struct EntityState: Sendable, Equatable {
        /// `binary_sensor.front_door_door`.
        public var entityID: String
        /// `on`, `21.5`, `unavailable`, `armed_away`.
        public var state: String
        /// The attributes that are text (`device_class`, `friendly_name`, `unit_of_measurement`).
        public var attributes: [String: String]
    }

    /// Every entity's state; nil when the API does not answer.
    public func states() async -> [EntityState]? {
        guard let answer = await httpRequest(port: port, path: "/api/states", headers: authorization),
            answer.status == 200,
            let list = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]]
        else { return nil }
        return list.compactMap { item in
            guard let id = item["entity_id"] as? String, let state = item["state"] as? String else { return nil }
            let attributes = (item["attributes"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
            return EntityState(entityID: id, state: state, attributes: attributes)
        }
    }

    /// One entity's state; nil when it has none (or the API does not answer).
    public func state(_ entityID: String) async -> EntityState? {
        await states()?.first { $0.entityID == entityID }
    }

    /// Calls a service (`alarm_control_panel.alarm_arm_away`) with its data.
    /// - Returns: the HTTP status; nil when the API did not answer.
    @discardableResult
    public func call(_ service: String, data: [String: String]) async -> Int? {
        let parts = service.split(separator: ".")
        guard parts.count == 2, let body = try? JSONSerialization.data(withJSONObject: data) else { return nil }
        return await httpRequest(
            port: port, method: "POST", path: "/api/services/\(parts[0])/\(parts[1])",
            headers: authorization.merging(["Content-Type": "application/json"]) { $1 },
            body: String(decoding: body, as: UTF8.self))?.status
    }

    /// A device of its device registry.
    public struct Device: Sendable, Equatable {
        /// The registry's id, which `Entity.deviceID` and `viaDeviceID` name.
        public var id: String
        /// Its name as announced.
        public var name: String
        /// Its identifiers' values (the domain, `mqtt`, left out).
        public var identifiers: [String]
        /// The registry id of the device it connects through; nil for none.
        public var viaDeviceID: String?
        /// Its model, as announced.
        public var model: String?
    }

    /// An entity of its entity registry.
    public struct Entity: Sendable, Equatable {
        /// `binary_sensor.front_door_door`.
        public var entityID: String
        /// The id the integration gave it (wiregate's `unique_id`).
        public var uniqueID: String
        /// The registry id of its device.
        public var deviceID: String?
        /// Its name as the integration gave it.
        public var originalName: String?
        /// `diagnostic`, `config`, or nil.
        public var entityCategory: String?
    }

    /// The device and entity registries, from its websocket API (`scripts/homeassistant/registry.py`).
    public func registry() async -> (devices: [Device], entities: [Entity])? {
        let script = HouseBroker.repositoryRoot.appendingPathComponent("scripts/homeassistant/registry.py").path
        let arguments = [script, "http://127.0.0.1:\(port)", token]
        // It blocks until the script ends: on a thread of its own, not the concurrency pool's.
        let output: String? = await withCheckedContinuation { continuation in
            Thread {
                let result = try? ChildProcess.run(Self.venv + "/bin/python", arguments)
                continuation.resume(returning: result?.status == 0 ? result?.output : nil)
            }.start()
        }
        guard let output, let json = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            let devices = json["devices"] as? [[String: Any]], let entities = json["entities"] as? [[String: Any]]
        else { return nil }
        return (
            devices.compactMap { item in
                guard let id = item["id"] as? String else { return nil }
                let identifiers = (item["identifiers"] as? [[String]] ?? []).compactMap { $0.last }
                return Device(
                    id: id, name: item["name"] as? String ?? "", identifiers: identifiers,
                    viaDeviceID: item["via_device_id"] as? String, model: item["model"] as? String)
            },
            entities.compactMap { item in
                guard let id = item["entity_id"] as? String, let unique = item["unique_id"] as? String else {
                    return nil
                }
                return Entity(
                    entityID: id, uniqueID: unique, deviceID: item["device_id"] as? String,
                    originalName: item["original_name"] as? String, entityCategory: item["entity_category"] as? String)
            }
        )
    }

    private var authorization: [String: String] { ["Authorization": "Bearer \(token)"] }
}
