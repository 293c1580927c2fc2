import Foundation
import Testing

/// The SageMaker Python SDK's framework models (`SKLearnModel(entry_point=, source_dir=)` and the like), as boto3
/// sends them: `SAGEMAKER_PROGRAM` and `SAGEMAKER_SUBMIT_DIRECTORY` in the container's environment, the code in a
/// `sourcedir.tar.gz` beside a model.tar.gz holding only the model. A real `serval serve`, real scikit-learn.
@Suite("SageMaker SDK framework models", .serialized)
struct SageMakerFrameworkModelTests {
    @Test("the entry script from sourcedir.tar.gz answers endpoints and transform jobs; bad submit directories are ValidationExceptions naming the variable")
    func sourceDirectory() async throws {
        let server = try await ServalServer()
        let output = try await python(
            SageMakerControlPlaneTests.prelude + #"""
            import joblib
            import numpy as np
            from sklearn.datasets import make_classification
            from sklearn.linear_model import LogisticRegression
            X, y = make_classification(n_samples=200, n_features=4, n_informative=2, n_redundant=0, random_state=3)
            model = LogisticRegression().fit(X, y)
            probe = X[:5].round(4)

            def tar_gz(files):
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                    for name, data in files.items():
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
                return buffer.getvalue()

            saved = io.BytesIO()
            joblib.dump(model, saved)
            serve = (b"import helpers\n"
                     b"def predict_fn(data, model):\n"
                     b"    return {'marker': helpers.MARK, 'proba': model.predict_proba(data).tolist()}\n")
            s3.create_bucket(Bucket="mlbucket")
            s3.put_object(Bucket="mlbucket", Key="model/model.tar.gz", Body=tar_gz({"model.joblib": saved.getvalue()}))
            s3.put_object(Bucket="mlbucket", Key="code/sourcedir.tar.gz",
                          Body=tar_gz({"serve.py": serve, "helpers.py": b"MARK = 'from sourcedir'\n"}))
            s3.put_object(Bucket="mlbucket", Key="inside/model.tar.gz", Body=tar_gz({
                "model.joblib": saved.getvalue(), "code/serve.py": serve, "code/helpers.py": b"MARK = 'inside'\n"}))

            def create(name, model_key, directory):
                sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
                                PrimaryContainer={"ModelDataUrl": f"s3://mlbucket/{model_key}/model.tar.gz",
                                                  "Environment": {"SAGEMAKER_PROGRAM": "serve.py",
                                                                  "SAGEMAKER_SUBMIT_DIRECTORY": directory}})

            def check(answer, marker, rows):
                assert answer["predictions"]["marker"] == marker, answer
                assert np.allclose(answer["predictions"]["proba"], model.predict_proba(rows), atol=1e-9), answer

            create("framework", "model", "s3://mlbucket/code/sourcedir.tar.gz")
            create("inside", "inside", "/opt/ml/model/code")
            for name in ("framework", "inside"):
                sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
                    {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1}])
                sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            for name, marker in (("framework", "from sourcedir"), ("inside", "inside")):
                sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=fast)
                response = rt.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                              Body=json.dumps({"instances": probe.tolist()}))
                check(json.loads(response["Body"].read()), marker, probe)

            csv = "".join(",".join(str(v) for v in row) + "\n" for row in probe)
            s3.put_object(Bucket="mlbucket", Key="batch/in.csv", Body=csv.encode())
            sm.create_transform_job(
                TransformJobName="framework-job", ModelName="framework", BatchStrategy="SingleRecord",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://mlbucket/batch/"}},
                                "ContentType": "text/csv", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": "s3://mlbucket/out", "AssembleWith": "Line"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="framework-job", WaiterConfig=fast)
            job = sm.describe_transform_job(TransformJobName="framework-job")
            assert job["TransformJobStatus"] == "Completed", job
            lines = s3.get_object(Bucket="mlbucket", Key="out/in.csv.out")["Body"].read().decode().splitlines()
            assert len(lines) == len(probe), lines
            for line, row in zip(lines, probe):
                check(json.loads(line), "from sourcedir", row.reshape(1, -1))

            s3.put_object(Bucket="mlbucket", Key="code/broken.tar.gz", Body=b"not an archive at all")
            for directory, text in (("s3://mlbucket/code/missing.tar.gz", "does not exist in Serval's object store"),
                                    ("s3://mlbucket/code/broken.tar.gz", "SAGEMAKER_SUBMIT_DIRECTORY s3://mlbucket/code/broken.tar.gz"),
                                    ("/opt/ml/code", "is not a place Serval reads code from")):
                code, message, status = error(
                    sm.create_model, ModelName="bad", PrimaryContainer={"ModelDataUrl": "s3://mlbucket/model/model.tar.gz",
                        "Environment": {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": directory}})
                assert (code, status) == ("ValidationException", 400), (directory, code, status, message)
                assert "SAGEMAKER_SUBMIT_DIRECTORY" in message and text in message, (directory, message)
            assert "bad" not in [m["ModelName"] for m in sm.list_models()["Models"]]
            print("ok")
            """#, "\(server.port)", "\(server.s3Port)")
        #expect(output.contains("ok"), "\(output)")
    }
}
