import Foundation
import Testing

/// The SageMaker Python SDK 2.x, unmodified and through its public API only (`Model(...).deploy`,
/// `Predictor.predict`, `update_endpoint`, `delete_endpoint`, `delete_model`), against a real `serval serve`: the
/// SDK finds Serval through `AWS_ENDPOINT_URL_SAGEMAKER`, `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` and
/// `AWS_ENDPOINT_URL_S3`; a `default_bucket` and an explicit role keep it from asking STS. Answers are compared
/// with the scikit-learn models' own predictions, made in the same script.
@Suite("SageMaker Python SDK", .serialized)
struct SageMakerSDKTests {
    @Test("deploy with tags → predict → update_endpoint to another model (its config from the old one's description and tags) → predict → delete_endpoint → delete_model")
    func deployUpdateDelete() async throws {
        let server = try await ServalServer()
        let output = try await python(
            #"""
            import io, os, sys, tarfile
            port, s3port = sys.argv[1], sys.argv[2]
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = f"http://127.0.0.1:{port}"
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = f"http://127.0.0.1:{port}"
            os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{s3port}"
            os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
            import boto3, joblib
            import sagemaker
            from botocore.config import Config
            from sagemaker.deserializers import JSONDeserializer
            from sagemaker.model import Model
            from sagemaker.predictor import Predictor
            from sagemaker.serializers import JSONSerializer
            from sklearn.datasets import make_classification
            from sklearn.linear_model import LogisticRegression
            from sklearn.tree import DecisionTreeClassifier

            boto_session = boto3.Session(region_name="eu-west-2", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
            s3 = boto_session.client("s3", config=Config(s3={"addressing_style": "path"}))
            sm = boto_session.client("sagemaker")
            session = sagemaker.Session(boto_session=boto_session, default_bucket="sdk-artifacts")
            role = "arn:aws:iam::000000000000:role/SageMakerRole"

            X, y = make_classification(n_samples=300, n_features=4, n_informative=2, n_redundant=0, random_state=11)
            probe = X[:8].round(4)
            first, second = LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
            assert (first.predict(probe) != second.predict(probe)).any(), "the two models must answer differently"

            def upload(model, key):
                saved, buffer = io.BytesIO(), io.BytesIO()
                joblib.dump(model, saved)
                with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                    info = tarfile.TarInfo("model.joblib")
                    info.size = len(saved.getvalue())
                    tar.addfile(info, io.BytesIO(saved.getvalue()))
                s3.put_object(Bucket="sdk-artifacts", Key=key, Body=buffer.getvalue())
                return f"s3://sdk-artifacts/{key}"

            s3.create_bucket(Bucket="sdk-artifacts")
            image = "763104351884.dkr.ecr.eu-west-2.amazonaws.com/sklearn-inference:1.2-1"
            model_a = Model(image_uri=image, model_data=upload(first, "a/model.tar.gz"), role=role, name="sdk-model-a",
                            sagemaker_session=session, predictor_cls=Predictor)
            predictor = model_a.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-endpoint",
                                       serializer=JSONSerializer(), deserializer=JSONDeserializer(),
                                       tags=[{"Key": "team", "Value": "ml"}], wait=False)
            session.wait_for_endpoint("sdk-endpoint", poll=1)
            answer = predictor.predict({"instances": probe.tolist()})
            assert answer["predictions"] == first.predict(probe).tolist(), answer
            config_a = sm.describe_endpoint(EndpointName="sdk-endpoint")["EndpointConfigName"]
            # deploy(tags=) tags the model, the endpoint config and the endpoint.
            for arn in (sm.describe_model(ModelName="sdk-model-a")["ModelArn"], sm.describe_endpoint_config(EndpointConfigName=config_a)["EndpointConfigArn"],
                        sm.describe_endpoint(EndpointName="sdk-endpoint")["EndpointArn"]):
                assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}], arn

            # update_endpoint: a new config from the old one (DescribeEndpointConfig, ListTags), then UpdateEndpoint.
            model_b = Model(image_uri=image, model_data=upload(second, "b/model.tar.gz"), role=role, name="sdk-model-b",
                            sagemaker_session=session)
            model_b.create(instance_type="ml.m5.large")
            predictor.update_endpoint(initial_instance_count=1, instance_type="ml.m5.large", model_name="sdk-model-b", wait=False)
            session.wait_for_endpoint("sdk-endpoint", poll=1)
            answer = predictor.predict({"instances": probe.tolist()})
            assert answer["predictions"] == second.predict(probe).tolist(), answer
            config_b = sm.describe_endpoint(EndpointName="sdk-endpoint")["EndpointConfigName"]
            assert config_b.startswith("sdk-endpoint-") and config_b != config_a, config_b
            # The new config carries the old one's tags, which the SDK read with ListTags.
            assert sm.list_tags(ResourceArn=sm.describe_endpoint_config(EndpointConfigName=config_b)["EndpointConfigArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]

            # delete_endpoint() deletes the endpoint's config first, then the endpoint; delete_model() follows at once, while
            # the endpoint still drains. Each succeeds, as on SageMaker.
            predictor.delete_endpoint()
            predictor.delete_model()
            sm.get_waiter("endpoint_deleted").wait(EndpointName="sdk-endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            # What the SDK did not name stays, as on SageMaker: the first model and config.
            assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["sdk-model-a"], sm.list_models()["Models"]
            assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [config_a]
            assert sm.list_endpoints()["Endpoints"] == []
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)")
        #expect(output.contains("ok"), "\(output)")
        try await eventually("only sdk-model-a's package is left") {
            try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/models").count == 1
        }
        await server.stop()
    }
}
