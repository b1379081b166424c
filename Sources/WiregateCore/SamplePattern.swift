/// Lines a simulated board prints, one pattern per protocol, each carrying a sequence
/// number so that a receiver can tell whether anything was lost.
public enum SamplePattern {
    /// The `n`-th line of the pattern for `protocolName` (a name from `LineProtocols`).
    public static func line(protocol protocolName: String, sequence n: Int) -> String {
        let temperature = 20 + Double(n % 50) / 10
        let door = (n / 10) % 2 == 0 ? "closed" : "open"
        switch protocolName {
        case JSONLineDecoder.protocolName:
            return #"{"seq":\#(n),"sensor":"hall","temperature":\#(temperature),"motion":\#(n % 7 == 0)}"#
        case MySensorsDecoder.protocolName:
            return "1;1;1;0;24;\(n)"
        case InfluxLineDecoder.protocolName:
            return "env,room=hall temperature=\(temperature),seq=\(n)i"
        case RawLineDecoder.protocolName:
            return "seq=\(n) hello from a simulated board"
        default:
            return "seq=\(n);door=\(door);temperature=\(temperature);battery=\(100 - n % 100)"
        }
    }

    /// What a simulated board answers to a command line, as a real sketch would.
    public static func reply(protocol protocolName: String, to command: String) -> String {
        if protocolName == MySensorsDecoder.protocolName {
            // A MySensors node echoes a set as its new state, without the ack request.
            let fields = command.split(separator: ";", maxSplits: 5, omittingEmptySubsequences: false)
            if fields.count == 6 {
                return [fields[0], fields[1], fields[2], "0", fields[4], fields[5]].joined(separator: ";")
            }
        }
        if command == "PING" { return protocolName == JSONLineDecoder.protocolName ? #"{"pong":1}"# : "pong=1" }
        if let split = command.firstIndex(of: "="), protocolName == KeyValueDecoder.protocolName {
            return command[..<split].lowercased() + "=" + command[command.index(after: split)...]
        }
        return protocolName == JSONLineDecoder.protocolName ? #"{"ack":"\#(command)"}"# : "ack=\(command)"
    }
}
