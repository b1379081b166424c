/// A Home Assistant discovery config the gateway published, kept beside the events so that a
/// start which no longer produces it (a board removed from the config, a key no longer mapped)
/// clears it with an empty retained message: no ghost entity is left in Home Assistant.
public struct DiscoveryRecord: Sendable, Equatable, Hashable {
    /// The per-component config topic, `<prefix>/<component>/<node_id>/<object_id>/config`: the
    /// entity's identity, in either discovery mode.
    public var topic: String
    /// The device's node id.
    public var node: String
    /// The entity's object id.
    public var object: String
    /// The entity's platform, as Home Assistant names it.
    public var component: String
    /// The board the entity belongs to; nil for the gateway's.
    public var board: String?
    /// The board's key it shows; nil for the gateway's own entities.
    public var key: String?
    /// An adopted board's identity as `source:value` (`serial:A1B2`), to announce it again while
    /// it is unplugged; nil for a configured board's (its `match:` says it) and the gateway's.
    public var identity: String? = nil
    /// The discovery mode it was published in (`component` or `device`): a change of mode clears
    /// the old topics.
    public var mode: String = "component"

    /// A record of one published config.
    /// - Parameters:
    ///   - topic: its per-component config topic.
    ///   - node: the device's node id.
    ///   - object: the entity's object id.
    ///   - component: its platform.
    ///   - board: its board; nil for the gateway's.
    ///   - key: its key; nil for an entity the gateway makes.
    public init(topic: String, node: String, object: String, component: String, board: String?, key: String?) {
        self.topic = topic
        self.node = node
        self.object = object
        self.component = component
        self.board = board
        self.key = key
    }
}

/// What is announced to Home Assistant, and what must be cleared: pure bookkeeping over the
/// catalog, fed with the records of the last runs and the boards as they become known.
///
/// Each entity is known by its per-component config topic (in either mode); the first entity
/// to take a topic keeps it (two keys of a board that slug alike: the second is not announced).
public struct DiscoveryPlan: Sendable {
    private struct Entry: Sendable {
        var entity: DiscoveryEntity
        var device: DiscoveryJSON
        /// The adopted board's identity, as a record keeps it.
        var identity: String?
    }

    /// What is announced.
    public let catalog: DiscoveryCatalog
    private var entries: [String: Entry] = [:]
    /// Topics in the order they were first produced: configs go out in a stable order.
    private var order: [String] = []
    private var boards: Set<String> = []
    /// Each board key's platform, for the publisher (an event's value is not retained).
    private var components: [String: EntityComponent] = [:]
    /// Adopted boards known only from the records: retired if they do not come back.
    private var restoredAdopted: Set<String> = []
    /// Configs recorded (by earlier runs or this one) in this mode.
    private var recorded: Set<String> = []
    /// Records of configs this run no longer produces (or produced in the other mode): cleared
    /// at the next full publish, then forgotten.
    public var stale: [DiscoveryRecord]
    /// Topics produced or changed since the last `configMessages`, in order.
    public private(set) var unpublished: [String] = []
    private var unpublishedSet: Set<String> = []

    /// The plan of a start.
    /// - Parameters:
    ///   - catalog: what is announced.
    ///   - records: the configs earlier runs published.
    ///   - boards: the boards known at the start (configured ones).
    public init(catalog: DiscoveryCatalog, records: [DiscoveryRecord], boards: [GatewayConfig.Board]) {
        self.catalog = catalog
        stale = []
        for entity in catalog.gatewayEntities() { insert(entity, device: catalog.gatewayDevice, identity: nil) }
        for board in boards { add(board: board) }
        let byNode = Dictionary(boards.map { (catalog.nodeID(of: $0), $0) }, uniquingKeysWith: { first, _ in first })
        let config = catalog.config
        for record in records {
            guard let key = record.key, let name = record.board else { continue }
            if let board = byNode[record.node] {
                // A board renamed in the config keeps its device: its keys go on under the new name.
                add(board: board, key: key)
            } else if let identity = record.identity.flatMap(Self.identity), config.discovery.adoptUnknown,
                !config.boards.contains(where: { $0.name == name }),
                let board = config.adoptedBoard(named: name, identity: identity),
                catalog.nodeID(of: board) == record.node
            {
                // An adopted board unplugged at this start: kept while it may come back.
                add(board: board)
                add(board: board, key: key)
                restoredAdopted.insert(board.name)
            }
        }
        let mode = catalog.settings.mode.rawValue
        for record in records {
            if record.mode == mode && entries[record.topic] != nil {
                recorded.insert(record.topic)
            } else {
                stale.append(record)
            }
        }
    }

    /// Whether the board's own entities are in the plan.
    public func knows(board name: String) -> Bool { boards.contains(name) }

    /// Adds a board's own entities (connectivity, declared keys, commands); once per board.
    public mutating func add(board: GatewayConfig.Board) {
        guard boards.insert(board.name).inserted else { return }
        for entity in catalog.boardEntities(board) {
            insert(entity, device: catalog.device(of: board), identity: Self.text(board.adoptedIdentity))
        }
    }

    /// Adds the entity of a board's key, when a rule maps it.
    /// - Returns: whether it is in the plan now (false: not mapped, or its topic is another key's).
    @discardableResult
    public mutating func add(board: GatewayConfig.Board, key: String) -> Bool {
        add(board: board)
        guard let entity = catalog.entity(board, key: key) else { return false }
        return insert(entity, device: catalog.device(of: board), identity: Self.text(board.adoptedIdentity))
    }

    @discardableResult
    private mutating func insert(_ entity: DiscoveryEntity, device: DiscoveryJSON, identity: String?) -> Bool {
        let topic = entity.configTopic(prefix: catalog.settings.prefix)
        if let existing = entries[topic] {
            guard existing.entity.key == entity.key, existing.entity.board == entity.board || entity.key == nil else {
                return false
            }
            if existing.entity == entity && existing.device == device { return true }
        } else {
            order.append(topic)
        }
        entries[topic] = Entry(entity: entity, device: device, identity: identity)
        // Produced again (a retired adopted board back): its record of this mode is live, not stale.
        let mode = catalog.settings.mode.rawValue
        if stale.contains(where: { $0.topic == topic && $0.mode == mode }) {
            stale.removeAll { $0.topic == topic && $0.mode == mode }
            recorded.insert(topic)
        }
        if let board = entity.board, let key = entity.key {
            components[Self.componentKey(board, key)] = entity.component
        }
        if unpublishedSet.insert(topic).inserted { unpublished.append(topic) }
        return true
    }

    private static func componentKey(_ board: String, _ key: String) -> String { board + "\u{0}" + key }

    /// The platform of the entity a board's key is in the plan as; nil when it is not in it.
    public func component(board: String, key: String) -> EntityComponent? {
        components[Self.componentKey(board, key)]
    }

    /// Retires the adopted boards known only from the records that are not `present` now: their
    /// entities become stale, cleared at the next full publish (a board without a serial number
    /// moved to another USB port is a new device; the old one must go).
    /// - Returns: the boards retired.
    public mutating func retireAbsentAdopted(present: Set<String>) -> [String] {
        let retired = restoredAdopted.subtracting(present)
        restoredAdopted.removeAll()
        guard !retired.isEmpty else { return [] }
        let mode = catalog.settings.mode.rawValue
        for topic in order {
            guard let entry = entries[topic], let board = entry.entity.board, retired.contains(board) else { continue }
            var record = DiscoveryRecord(
                topic: topic, node: entry.entity.nodeID, object: entry.entity.objectID,
                component: entry.entity.component.rawValue, board: board, key: entry.entity.key)
            record.identity = entry.identity
            record.mode = mode
            stale.append(record)
            entries[topic] = nil
            recorded.remove(topic)
            if let key = entry.entity.key { components[Self.componentKey(board, key)] = nil }
        }
        order.removeAll { entries[$0] == nil }
        boards.subtract(retired)
        return Array(retired)
    }

    /// Every entity in the plan, in the order first produced.
    public var entities: [DiscoveryEntity] { order.compactMap { entries[$0]?.entity } }

    /// The retained messages that clear `stale`: an empty config per entity (per-component
    /// discovery, or a config published in the other mode), and in device mode an empty device
    /// config for a device with nothing left (a device still produced drops the others through
    /// `configMessages`).
    public func clearingMessages() -> [(topic: String, payload: String)] {
        var messages: [(topic: String, payload: String)] = []
        var devicesCleared: Set<String> = []
        let deviceMode = GatewayConfig.HomeAssistant.DiscoveryMode.device
        for record in stale {
            if record.mode == deviceMode.rawValue {
                // Gone for good in component mode; in device mode, unless the device is still produced.
                let produced =
                    catalog.settings.mode == deviceMode && entries.values.contains { $0.entity.nodeID == record.node }
                if !produced, devicesCleared.insert(record.node).inserted {
                    messages.append((catalog.deviceTopic(node: record.node), ""))
                }
            } else {
                messages.append((record.topic, ""))
            }
            // Its retained state too: a board that takes the name later must not show this one's.
            if let board = record.board, let key = record.key,
                component(board: board, key: key) == nil
            {
                messages.append((catalog.config.entityStateTopic(board: board, subtopic: key), ""))
            }
        }
        return messages
    }

    /// The configs: every one, or only those produced or changed since the last call (in device
    /// mode, the whole config of each device that has one). Marks them published.
    public mutating func configMessages(onlyUnpublished: Bool = false) -> [(topic: String, payload: String)] {
        let topics = onlyUnpublished ? unpublished : order
        unpublished.removeAll()
        unpublishedSet.removeAll()
        switch catalog.settings.mode {
        case .component:
            return topics.compactMap { topic in
                entries[topic].map { catalog.message(for: $0.entity, device: $0.device) }
            }
        case .device:
            var nodes: [String] = []
            for topic in topics {
                if let node = entries[topic]?.entity.nodeID, !nodes.contains(node) { nodes.append(node) }
            }
            let device = GatewayConfig.HomeAssistant.DiscoveryMode.device.rawValue
            return nodes.map { node in
                let members = order.compactMap { entries[$0] }.filter { $0.entity.nodeID == node }
                let removed = stale.filter { $0.node == node && $0.mode == device }.compactMap { record in
                    EntityComponent(rawValue: record.component).map { (record.object, $0) }
                }
                return catalog.deviceMessage(
                    node: node, device: members[0].device, entities: members.map(\.entity), removed: removed)
            }
        }
    }

    /// The records of entities not yet recorded in this mode; marks them recorded.
    public mutating func takeUnrecorded() -> [DiscoveryRecord] {
        let mode = catalog.settings.mode.rawValue
        var records: [DiscoveryRecord] = []
        for topic in order where !recorded.contains(topic) {
            guard let entry = entries[topic] else { continue }
            var record = DiscoveryRecord(
                topic: topic, node: entry.entity.nodeID, object: entry.entity.objectID,
                component: entry.entity.component.rawValue, board: entry.entity.board, key: entry.entity.key)
            record.identity = entry.identity
            record.mode = mode
            records.append(record)
            recorded.insert(topic)
        }
        return records
    }

    static func text(_ identity: BoardIdentity?) -> String? {
        identity.map { "\($0.source.rawValue):\($0.value)" }
    }

    static func identity(_ text: String) -> BoardIdentity? {
        guard let colon = text.firstIndex(of: ":"),
            let source = BoardIdentity.Source(rawValue: String(text[..<colon]))
        else { return nil }
        return BoardIdentity(source: source, value: String(text[text.index(after: colon)...]))
    }
}
