# Sourced by the start commands in infra/aws/cluster.yaml before `ray start`; Ray workers inherit
# these variables from the raylet. Credentials come from SSM Parameter Store (SecureString, KMS
# encrypted, readable through the nodes' instance profile: docs/operations.md), never from files
# in this repository.
#   $1: the head's private IP (the MLflow server runs on the head, port 5000, inside the VPC only)
#   $2: the AWS region (provider.region of cluster.yaml)
_ssm() { aws ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text; }
export AWS_DEFAULT_REGION="$2"
export MLFLOW_TRACKING_URI="http://$1:5000"
export MLFLOW_TRACKING_USERNAME="$(_ssm /tubelab/mlflow/client-username)"
export MLFLOW_TRACKING_PASSWORD="$(_ssm /tubelab/mlflow/client-password)"
export RAY_AUTH_MODE=token   # the token itself: ~/.ray/auth_token (file_mounts)
