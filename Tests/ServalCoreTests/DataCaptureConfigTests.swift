import ServalCore
import Testing

@Suite("DataCaptureConfig: checked when the config is made, errors naming the field as each API calls it")
struct DataCaptureConfigTests {
    static func capture(percentage: Int = 20, destination: String = "s3://capture/data", input: Bool = true, output: Bool = true)
        -> DataCaptureConfig
    {
        DataCaptureConfig(samplingPercentage: percentage, destination: destination, captureInput: input, captureOutput: output)
    }

    @Test("0 to 100 percent, a bucket with or without a prefix, any one mode: accepted")
    func valid() {
        for config in [
            Self.capture(percentage: 0), Self.capture(percentage: 100), Self.capture(destination: "s3://capture"),
            Self.capture(destination: "s3://capture/a/b/"), Self.capture(input: false), Self.capture(output: false),
        ] {
            #expect(failure { try config.validate(fields: .rest("dataCapture")) } == nil)
        }
    }

    @Test("a percentage outside 0–100 is refused naming the field", arguments: [-1, 101, Int.max])
    func percentage(value: Int) {
        expectInvalid(field: "dataCapture.samplingPercentage", mentioning: "0 to 100") {
            try Self.capture(percentage: value).validate(fields: .rest("dataCapture"))
        }
        expectInvalid(field: "DataCaptureConfig.InitialSamplingPercentage", mentioning: "0 to 100") {
            try Self.capture(percentage: value).validate(fields: .sageMaker("DataCaptureConfig"))
        }
    }

    @Test(
        "a destination that is not an s3:// location in Serval's store is refused naming the field",
        arguments: [
            "https://capture.s3.amazonaws.com/data", "capture/data", "S3://capture/data", "s3a://capture/data", "", "s3://",
            "s3://Capture/data", "s3://ab/data", "s3://capture//data", "s3://capture/../data", "s3://192.168.1.1/data",
        ])
    func destination(uri: String) {
        expectInvalid(field: "dataCapture.destination") {
            try Self.capture(destination: uri).validate(fields: .rest("dataCapture"))
        }
        expectInvalid(field: "DataCaptureConfig.DestinationS3Uri") {
            try Self.capture(destination: uri).validate(fields: .sageMaker("DataCaptureConfig"))
        }
    }

    @Test("a config capturing neither input nor output is refused")
    func modes() {
        expectInvalid(field: "dataCapture.captureModes") {
            try Self.capture(input: false, output: false).validate(fields: .rest("dataCapture"))
        }
    }

    @Test("text content types match without case and parameters; anything else is BASE64")
    func encoding() {
        let config = Self.capture()
        #expect(config.encoding(of: "text/csv") == .csv)
        #expect(config.encoding(of: " Text/CSV ; charset=utf-8") == .csv)
        #expect(config.encoding(of: "APPLICATION/JSON") == .json)
        #expect(config.encoding(of: "application/jsonlines") == .base64)
        #expect(config.encoding(of: "text/csvx") == .base64)
        #expect(config.encoding(of: "") == .base64)
        #expect(config.encoding(of: "application/vnd.sagemaker-triton.binary+json;json-header-size=42") == .base64)
    }
}
