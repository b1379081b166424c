import Testing

@testable import WiregateCore

private func messages(_ decoder: some LineDecoder, _ line: String) throws -> [String] {
    try decoder.decode(line).map { $0.levels.joined(separator: "/") + " " + $0.payload }
}

@Suite struct KeyValueDecoderTests {
    let decoder = KeyValueDecoder()

    @Test func decodesOneMessagePerKey() throws {
        #expect(try messages(decoder, "door=open;battery=87") == ["door open", "battery 87"])
        #expect(try messages(decoder, " door = open ; ") == ["door open"])
        #expect(try messages(decoder, "note=a=b") == ["note a=b"])
    }

    @Test func customSeparators() throws {
        let decoder = KeyValueDecoder(pairSeparator: ",", valueSeparator: ":")
        #expect(try messages(decoder, "t:21.5,h:40") == ["t 21.5", "h 40"])
    }

    @Test(arguments: ["door", "=open", "door=open;battery", ";;", "   "])
    func malformedLinesAreRefusedWhole(line: String) {
        #expect(throws: DecodeError.self) { try decoder.decode(line) }
    }
}

@Suite struct JSONLineDecoderTests {
    @Test func everyScalarFieldWithoutATemplate() throws {
        // The ArduinoJson documentation's example document.
        let line = #"{"sensor":"gps","time":1351824120,"data":[48.756080,2.302038]}"#
        #expect(try messages(JSONLineDecoder(), line) == ["data [48.75608,2.302038]", "sensor gps", "time 1351824120"])
        #expect(
            try messages(JSONLineDecoder(), #"{"env":{"t":21.5,"ok":true},"n":null}"#) == [
                "env/ok true", "env/t 21.5", "n null"
            ])
    }

    @Test func templateAndValueField() throws {
        let decoder = JSONLineDecoder(topic: try TopicTemplate("{sensor}/{id}"), valueField: "state")
        #expect(try messages(decoder, #"{"sensor":"door","id":2,"state":"open"}"#) == ["door/2 open"])
        let whole = JSONLineDecoder(topic: try TopicTemplate("{sensor}"))
        let line = #"{"sensor":"motion","v":1}"#
        #expect(try messages(whole, line) == ["motion \(line)"])
        let nested = JSONLineDecoder(topic: try TopicTemplate("{meta.room}/t"), valueField: "t")
        #expect(try messages(nested, #"{"meta":{"room":"hall"},"t":20}"#) == ["hall/t 20"])
    }

    @Test(arguments: [#"{"sensor":"door""#, "[1,2]", "\"door\"", "{}", "not json"])
    func malformedLinesAreRefused(line: String) {
        #expect(throws: DecodeError.self) { try JSONLineDecoder().decode(line) }
    }

    @Test func missingTemplateFieldIsRefused() throws {
        let decoder = JSONLineDecoder(topic: try TopicTemplate("{sensor}/{id}"))
        #expect(throws: DecodeError.self) { try decoder.decode(#"{"sensor":"door"}"#) }
        let valued = JSONLineDecoder(topic: try TopicTemplate("{sensor}"), valueField: "state")
        #expect(throws: DecodeError.self) { try valued.decode(#"{"sensor":"door"}"#) }
    }
}

@Suite struct MySensorsDecoderTests {
    let decoder = MySensorsDecoder()

    @Test func serialAPIExamples() throws {
        // From the MySensors serial API page: a temperature set, and an internal log message.
        #expect(try messages(decoder, "12;6;1;0;0;36.5") == ["mysensors-out/12/6/1/0/0 36.5"])
        #expect(
            try messages(decoder, "0;255;3;0;9;read: 1-1-0 s=0,c=1,t=0,pt=7,l=5:22.0") == [
                "mysensors-out/0/255/3/0/9 read: 1-1-0 s=0,c=1,t=0,pt=7,l=5:22.0"
            ])
        #expect(try messages(decoder, "1;255;0;0;17;2.3.2") == ["mysensors-out/1/255/0/0/17 2.3.2"])
        #expect(try messages(decoder, "5;1;1;0;2;") == ["mysensors-out/5/1/1/0/2 "])
    }

    @Test(arguments: ["12;6;1;0;0", "a;6;1;0;0;1", "256;1;1;0;0;1", "1;1;5;0;0;1", "1;1;1;2;0;1", "1;1;1;0;-1;1"])
    func malformedLinesAreRefused(line: String) {
        #expect(throws: DecodeError.self) { try decoder.decode(line) }
    }

    @Test func commandsFromTheInTopic() {
        #expect(decoder.commandFilters == ["mysensors-in/#"])
        #expect(decoder.commandLine(levels: ["mysensors-in", "12", "6", "1", "0", "2"], payload: "1") == "12;6;1;0;2;1")
        #expect(decoder.commandLine(levels: ["mysensors-in", "12", "6", "1", "0"], payload: "1") == nil)
        #expect(decoder.commandLine(levels: ["mysensors-out", "12", "6", "1", "0", "2"], payload: "1") == nil)
        #expect(decoder.commandLine(levels: ["mysensors-in", "12", "6", "1", "0", "2"], payload: "1;2") == nil)
        #expect(decoder.commandLine(levels: ["mysensors-in", "x", "6", "1", "0", "2"], payload: "1") == nil)
    }
}

@Suite struct InfluxLineDecoderTests {
    let decoder = InfluxLineDecoder()

    @Test func lineProtocolReferenceExamples() throws {
        #expect(
            try messages(decoder, #"myMeasurement,tag1=value1,tag2=value2 fieldKey="fieldValue" 1556813561098000000"#)
                == ["myMeasurement/fieldKey fieldValue"])
        #expect(
            try messages(decoder, #"my\ Measurement fieldKey="string value""#) == [
                "my Measurement/fieldKey string value"
            ])
        #expect(
            try messages(decoder, #"myMeasurement fieldKey="\"string\" within a string""#) == [
                #"myMeasurement/fieldKey "string" within a string"#
            ])
        #expect(
            try messages(decoder, #"myMeasurement,tag\ Key1=tag\ Value1,tag\ Key2=tag\ Value2 fieldKey=100"#) == [
                "myMeasurement/fieldKey 100"
            ])
        #expect(
            try messages(decoder, "myMeasurement,tagKey=tagValue fieldKey=1.0,fieldKey2=1i,f3=2u,b=t,c=FALSE") == [
                "myMeasurement/fieldKey 1.0", "myMeasurement/fieldKey2 1", "myMeasurement/f3 2", "myMeasurement/b true",
                "myMeasurement/c false"
            ])
        #expect(try messages(decoder, #"m f\,k\=x=-1.234456e+78"#) == ["m/f,k=x -1.234456e+78"])
        #expect(try messages(decoder, #"m s="back\\slash, and space""#) == [#"m/s back\slash, and space"#])
    }

    @Test func templateOverTags() throws {
        let decoder = InfluxLineDecoder(topic: try TopicTemplate("{room}/{field}"))
        #expect(try messages(decoder, "env,room=hall temperature=21.5") == ["hall/temperature 21.5"])
        #expect(throws: DecodeError.self) { try decoder.decode("env temperature=21.5") }
    }

    @Test(arguments: [
        "weather", "weather temperature", "weather temperature=", #"weather s="open"#, "weather t=1 notatime",
        "weather t=abc", "weather t=1i2", ",tag=1 f=1", "weather t=1 1 2", "weather,tag f=1"
    ])
    func malformedLinesAreRefused(line: String) {
        #expect(throws: DecodeError.self) { try decoder.decode(line) }
    }
}

@Suite struct RawLineDecoderTests {
    @Test func theLineIsThePayload() throws {
        #expect(try messages(RawLineDecoder(), "anything: at all; 1=2") == ["line anything: at all; 1=2"])
        #expect(try messages(RawLineDecoder(topic: "serial/out"), "x") == ["serial/out x"])
    }
}
