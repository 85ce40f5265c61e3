# The MLflow server image: MLflow with the PostgreSQL driver and boto3 for S3 artifacts.
#   docker build -f infra/k8s/mlflow.Dockerfile -t REGISTRY/tubelab-mlflow:3.17.2 infra/k8s
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow==3.17.2" psycopg2-binary boto3 \
 && useradd --uid 1000 --create-home mlflow
USER 1000
